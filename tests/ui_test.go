package tests

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/gateway"
)

// chromiumPath is the browser the web UI tests drive: GATEHOUSE_CHROMIUM,
// or Debian's chromium.
func chromiumPath(t *testing.T) string {
	t.Helper()
	path := os.Getenv("GATEHOUSE_CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no Chromium at %s (set GATEHOUSE_CHROMIUM): %v", path, err)
		}
		t.Skipf("no Chromium at %s (apt-get install chromium, or set GATEHOUSE_CHROMIUM): the web UI's browser tests need one", path)
	}
	return path
}

// newBrowser starts a headless Chromium with a fresh profile and returns a
// tab's context.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(cancel)
	// The first action starts the browser; it lives as long as ctx.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank"), chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// ui drives one browser against one stack.
type ui struct {
	t    *testing.T
	ctx  context.Context
	base string
}

// do runs steps with a bound, failing the test on error.
func (u *ui) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.ctx, 45*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		u.t.Fatalf("%s: %v\npage:\n%s", what, err, u.text("body"))
	}
}

// eval evaluates a JavaScript expression in the page.
func evalIn[T any](u *ui, expr string) T {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		u.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// text is the text of the first element matching a CSS selector, "" if none.
func (u *ui) text(sel string) string {
	ctx, cancel := context.WithTimeout(u.ctx, 10*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q) || {textContent: ""}).textContent.replace(/\s+/g, " ")`, sel)))
	return strings.TrimSpace(s)
}

func (u *ui) exists(sel string) bool {
	return evalIn[bool](u, fmt.Sprintf(`document.querySelector(%q) !== null`, sel))
}

// waitFor polls a JavaScript predicate in the page.
func (u *ui) waitFor(what, predicate string, timeout time.Duration) {
	u.t.Helper()
	u.do(what, chromedp.Steps(func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Poll[bool](predicate, chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(100*time.Millisecond))(ctx, t)
		return chromedp.Void{}, err
	}))
}

// signIn signs in through the sign-in form with a token.
func (u *ui) signIn(token string) {
	u.t.Helper()
	u.do("sign in with "+token,
		chromedp.Navigate(u.base+"/ui/"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), token),
		chromedp.Click(chromedp.CSS("form.stack button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("#runs-h")),
	)
}

func (u *ui) signOut() {
	u.t.Helper()
	u.do("sign out",
		chromedp.Click(chromedp.CSS(".me button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("#token")),
	)
}

func (u *ui) open(path string, ready string) {
	u.t.Helper()
	u.do("open "+path, chromedp.Navigate(u.base+path), chromedp.WaitVisible(chromedp.CSS(ready)))
}

// screenshot writes a PNG of the page to docs/screenshots when
// GATEHOUSE_SCREENSHOTS=1.
func (u *ui) screenshot(name string, full bool) {
	u.t.Helper()
	if os.Getenv("GATEHOUSE_SCREENSHOTS") != "1" {
		return
	}
	ctx, cancel := context.WithTimeout(u.ctx, 30*time.Second)
	defer cancel()
	// Let countdowns tick and the fonts settle.
	time.Sleep(1200 * time.Millisecond)
	shot := chromedp.CaptureScreenshot()
	if full {
		shot = chromedp.FullScreenshot(100)
	}
	png, err := chromedp.Run(ctx, shot)
	if err != nil {
		u.t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join("..", "docs", "screenshots", name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		u.t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		u.t.Fatal(err)
	}
	u.t.Logf("wrote %s", path)
}

func (u *ui) cookies() []*network.Cookie {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.ctx, 10*time.Second)
	defer cancel()
	res, err := chromedp.Run(ctx, func(ctx context.Context, t *chromedp.Target) (*network.GetCookiesResult, error) {
		r, err := cdp.Call(ctx, t, network.GetCookies, network.GetCookiesParams{URLs: []string{u.base + "/ui/"}})
		return &r, err
	})
	if err != nil {
		u.t.Fatalf("read cookies: %v", err)
	}
	return res.Cookies
}

// TestWebUI drives the approvers' web UI in a real browser against the
// whole stack: sign in, the inbox, the run page updating itself while
// another approver decides through the API, approve, reject, what a viewer
// and the requester are offered, and cross-site posts refused.
func TestWebUI(t *testing.T) {
	s := newStack(t, stackOptions{})
	u := &ui{t: t, ctx: newBrowser(t), base: s.url}

	first := s.createRun("prod-network", "t-alice", "prod-network.json")
	toReject := s.createRun("prod-network", "t-alice", "prod-network.json")
	third := s.createRun("prod-network", "t-alice", "prod-network.json")

	// Sign in as bob; the inbox lists the runs waiting for him (the list
	// comes from visibility, which lags a little: reload until it shows).
	u.signIn("t-bob")
	if !strings.Contains(u.text(".me"), "bob") {
		t.Fatalf("header %q; want bob signed in", u.text(".me"))
	}
	var session *network.Cookie
	for _, c := range u.cookies() {
		if c.Name == "gatehouse_session" {
			session = c
		}
	}
	if session == nil || !session.HTTPOnly || session.SameSite != network.CookieSameSiteLax {
		t.Fatalf("session cookie %+v; want HttpOnly, SameSite=Lax", session)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		u.open("/ui/", "#waiting-h")
		if u.exists(`#waiting tr[data-run="` + third.ID + `"]`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the inbox never listed run %s:\n%s", third.ID, u.text("main"))
		}
		time.Sleep(300 * time.Millisecond)
	}
	for _, r := range []gateway.RunView{first, toReject, third} {
		row := u.text(`#waiting tr[data-run="` + r.ID + `"]`)
		if !strings.Contains(row, "destroys-need-two") || !strings.Contains(row, "0/2") || !strings.Contains(row, "alice") {
			t.Errorf("inbox row of %s: %q; want the reason at 0/2, requested by alice", r.ID, row)
		}
	}
	u.screenshot("inbox.png", false)

	// The run page: the reason at 0/2, bob pending, an approve form.
	u.open("/ui/workspaces/prod-network/runs/"+first.ID, "#reasons-h")
	progress := `document.querySelector('[data-progress="rule:destroys-need-two"]').textContent.trim()`
	if got := evalIn[string](u, progress); got != "0/2" {
		t.Fatalf("progress %q; want 0/2", got)
	}
	if !u.exists("#approve-button") || !u.exists(`#approve-rule\:destroys-need-two`) {
		t.Fatalf("no approve form for bob:\n%s", u.text(".run-actions"))
	}
	if got := u.text(`#reason-rule\:destroys-need-two tr[data-approver="bob"] [data-state]`); got != "pending" {
		t.Errorf("bob's state %q; want pending", got)
	}
	for _, want := range []string{"prod-network", first.ID, "alice", "pending approval"} {
		if !strings.Contains(u.text(".run-head"), want) {
			t.Errorf("run header lacks %q:\n%s", want, u.text(".run-head"))
		}
	}
	if !strings.Contains(u.text(`#resources tr[data-action="replace"]`), "aws_nat_gateway.main") || !strings.Contains(u.text(`#resources tr[data-action="destroy"]`), "aws_security_group.legacy") {
		t.Errorf("plan section lacks the replaced NAT gateway and the destroyed security group:\n%s", u.text(".run-plan"))
	}

	// Bob approves in the page: 1/2, and the decision went through the UI.
	u.do("approve",
		chromedp.SendKeys(chromedp.CSS("#approve-comment"), "NAT swap checked"),
		chromedp.Click(chromedp.CSS("#approve-button")),
		chromedp.WaitVisible(chromedp.CSS(".flash-ok")),
	)
	if got := evalIn[string](u, progress); got != "1/2" {
		t.Fatalf("progress after bob %q; want 1/2\n%s", got, u.text("main"))
	}
	if flash := u.text(".flash-ok"); !strings.Contains(flash, "You approved run "+first.ID) || !strings.Contains(flash, "1/2") {
		t.Errorf("flash %q", flash)
	}
	got := s.get(first)
	if len(got.Decisions) != 1 || got.Decisions[0].UserID != "bob" || got.Decisions[0].Channel != approval.ChannelUI || got.Decisions[0].Comment != "NAT swap checked" {
		t.Fatalf("decisions %+v; want bob's approval from channel ui with his comment", got.Decisions)
	}
	if u.exists("#approve-button") {
		t.Errorf("bob is still offered approve after approving")
	}
	// The audit trail (written by the worker, read from the audit store)
	// shows the approval with its channel once it lands, without a reload.
	u.waitFor("bob's approval in the audit trail",
		`Array.from(document.querySelectorAll('#audit tbody tr')).some(tr => tr.textContent.includes('bob') && tr.textContent.includes('ui') && tr.textContent.includes('approved'))`,
		20*time.Second)
	if !u.exists("#more-revoke") {
		t.Errorf("bob is not offered to revoke his approval")
	}

	// Carol approves through the API while the page is open: the badge
	// goes to 2/2 and the run on to applied, without a reload.
	evalIn[bool](u, `window.__sameDocument = true`)
	s.decide(first, "approve", "t-carol", map[string]string{"comment": "ok"}, http.StatusOK)
	u.waitFor("badge 2/2 without reload", progress+` === "2/2"`, 20*time.Second)
	u.waitFor("status applied without reload", `document.querySelector('#run-status').textContent.includes('applied')`, 30*time.Second)
	if !evalIn[bool](u, `window.__sameDocument === true`) {
		t.Fatal("the page reloaded; it should have updated in place")
	}
	if got := u.text(`#reason-rule\:destroys-need-two tr[data-approver="carol"] [data-state]`); got != "approved" {
		t.Errorf("carol's state %q; want approved", got)
	}
	if !strings.Contains(u.text("#no-actions"), "applied") {
		t.Errorf("actions after apply %q; want none, the run applied", u.text(".run-actions"))
	}

	// Reject with a comment.
	u.open("/ui/workspaces/prod-network/runs/"+toReject.ID, "#reasons-h")
	u.do("reject",
		chromedp.Click(chromedp.CSS("#more-reject summary")),
		chromedp.WaitVisible(chromedp.CSS("#reject-comment")),
		chromedp.SendKeys(chromedp.CSS("#reject-comment"), "not during the freeze"),
		chromedp.Click(chromedp.CSS("#reject-button")),
		chromedp.WaitVisible(chromedp.CSS(".flash-ok")),
	)
	if !strings.Contains(u.text("#run-status"), "rejected") || !strings.Contains(u.text("#decisions"), "not during the freeze") {
		t.Errorf("after reject: status %q, decisions %q", u.text("#run-status"), u.text("#decisions"))
	}
	if got := s.get(toReject); got.Status != approval.StatusRejected || got.Decisions[0].Comment != "not during the freeze" || got.Decisions[0].Channel != approval.ChannelUI {
		t.Errorf("rejected run %s %+v", got.Status, got.Decisions)
	}

	// A form the browser submits without its token (the field emptied) is
	// refused and decides nothing... unless the browser vouches that it
	// came from this origin (Sec-Fetch-Site: same-origin), which Echo's
	// CSRF middleware accepts: so check the non-browser path with bob's
	// own session cookie, and the browser path from another site.
	var sessionValue string
	for _, c := range u.cookies() {
		if c.Name == "gatehouse_session" {
			sessionValue = c.Value
		}
	}
	form := url.Values{"reason_ids": {"rule:destroys-need-two"}, "comment": {"forged"}}
	req, _ := http.NewRequest("POST", s.url+"/ui/workspaces/prod-network/runs/"+third.ID+"/approve", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: "gatehouse_session", Value: sessionValue})
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("approve with bob's session but no CSRF token: %d; want 403", resp.StatusCode)
	}

	// Another site (localhost is another site than 127.0.0.1) posts a
	// form to Gatehouse in bob's browser.
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(s.url, "http://"))
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<!doctype html><html lang="en"><body><form id="f" method="post" action="http://127.0.0.1:%s/ui/workspaces/prod-network/runs/%s/approve">
<input name="reason_ids" value="rule:destroys-need-two"><input name="_csrf" value="guess"></form>
<script>document.getElementById('f').submit()</script></body></html>`, port, third.ID)
	}))
	defer evil.Close()
	evilURL := strings.Replace(evil.URL, "127.0.0.1", "localhost", 1)
	u.do("cross-site post", chromedp.Navigate(evilURL), chromedp.WaitVisible(chromedp.CSS("#error-h")))
	if msg := u.text("main"); !strings.Contains(msg, "403") || !strings.Contains(msg, "nothing was done") {
		t.Errorf("cross-site post answered %q; want the 403 page", msg)
	}
	if got := s.get(third); len(got.Decisions) != 0 || got.Reasons[0].Progress != "0/2" {
		t.Fatalf("a refused post decided: %+v", got.Decisions)
	}

	// A viewer sees the run but is offered nothing, and told why.
	u.open("/ui/", "#runs-h")
	u.signOut()
	u.signIn("t-victor")
	u.open("/ui/workspaces/prod-network/runs/"+third.ID, "#reasons-h")
	if u.exists("#approve-button") || u.exists("#form-reject") || u.exists("#form-cancel") {
		t.Errorf("the viewer is offered a decision:\n%s", u.text(".run-actions"))
	}
	if !strings.Contains(u.text("#no-approve"), "viewers may not approve") {
		t.Errorf("viewer told %q; want the role rule", u.text("#no-approve"))
	}

	// The requester may cancel but not approve her own run.
	u.signOut()
	u.signIn("t-alice")
	u.open("/ui/workspaces/prod-network/runs/"+third.ID, "#reasons-h")
	if u.exists("#approve-button") || u.exists("#form-reject") {
		t.Errorf("the requester is offered to approve or reject her own run:\n%s", u.text(".run-actions"))
	}
	if !u.exists("#form-cancel") {
		t.Errorf("the requester is not offered to cancel her run")
	}
	if !strings.Contains(u.text("#no-approve"), "self-approval") {
		t.Errorf("requester told %q; want the self-approval rule", u.text("#no-approve"))
	}
	// Nothing waits for her in the inbox.
	u.open("/ui/", "#waiting-h")
	if u.exists(`#waiting tr[data-run="` + third.ID + `"]`) {
		t.Errorf("the requester's inbox lists her own run as waiting for her")
	}

	// The page as a second approver finds it, for the README: bob has
	// approved through the API, carol has not yet.
	s.decide(third, "approve", "t-bob", map[string]string{"comment": "Checked the NAT gateway swap: same subnet, new EIP."}, http.StatusOK)
	u.signOut()
	u.signIn("t-carol")
	u.open("/ui/workspaces/prod-network/runs/"+third.ID, "#approve-button")
	if got := evalIn[string](u, progress); got != "1/2" {
		t.Errorf("progress seen by carol %q; want 1/2", got)
	}
	u.screenshot("run.png", true)
	if os.Getenv("GATEHOUSE_SCREENSHOTS") == "1" {
		// And on a phone.
		u.do("phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile))
		u.open("/ui/workspaces/prod-network/runs/"+third.ID, "#approve-button")
		evalIn[bool](u, `(document.getElementById('reasons-h').scrollIntoView(), true)`)
		u.screenshot("run-phone.png", false)
	}
}
