package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/config"
)

// runPage is the run page's model ("Approval Details").
type runPage struct {
	Run  RunView
	Path string // the run page's path
	// Final: the run can change no more; the page stops polling.
	Final   bool
	Me      approval.UserID
	CSRF    string
	Actions actionSet
	Plan    planGroups
	Links   []link
	Audit   auditSection
	// Regions are the live regions rendered, Hashes their digests and
	// Version the digest of them all: what the live endpoint compares.
	Regions map[string]template.HTML
	Hashes  map[string]string
	Version string
}

// link is a labelled URL elsewhere.
type link struct {
	Label, URL string
}

// actionSet says which decisions the signed-in user may take now, as the
// domain's checks say, and why not approve when they may not.
type actionSet struct {
	Path           string
	Approve        bool
	ApproveReasons []approval.Reason
	Reject         bool
	RequestChanges bool
	Revoke         bool
	Cancel         bool
	Bypass         bool
	// NoApprove says why the user may not approve, when the run still
	// waits for approvals.
	NoApprove string
	CSRF      string
}

// Any reports whether any action is offered.
func (a actionSet) Any() bool {
	return a.Approve || a.Reject || a.RequestChanges || a.Revoke || a.Cancel || a.Bypass
}

// actionsFor asks the domain which decisions user may take on run now. The
// text a decision requires is stood in for: the form asks for it.
func actionsFor(run approval.Run, user approval.Identity) actionSet {
	req := approval.Request{Actor: user, Comment: "-", Channel: approval.ChannelUI}
	a := actionSet{
		ApproveReasons: approvableReasons(run, user),
		Reject:         run.CheckReject(req) == nil,
		RequestChanges: run.CheckRequestChanges(req) == nil,
		Revoke:         run.CheckRevoke(req) == nil,
		Cancel:         run.CheckCancel(req) == nil,
		Bypass:         run.CheckBypass(req) == nil,
	}
	a.Approve = len(a.ApproveReasons) > 0
	if !a.Approve && (run.Status == approval.StatusPendingApproval || run.Status == approval.StatusAwaitingSignoff) {
		if err := run.CheckApprove(approval.Request{Actor: user}); err != nil {
			a.NoApprove = err.Error()
		} else {
			a.NoApprove = "You have approved every open reason you may approve."
		}
	}
	return a
}

// planGroups is the plan's resource changes by what they do, the most
// destructive first. Values are never shown: the store keeps none, and the
// view has only addresses, types and actions.
type planGroups struct {
	Groups []planGroup
	// Hidden counts the changes beyond what the page lists.
	Hidden int
	// Unreadable: the plan could not be read from the store.
	Unreadable bool
}

type planGroup struct {
	Action    string // replace, destroy, change, add, other
	Label     string
	Resources []ResourceView
}

// maxPlanRows bounds the resources the page lists.
const maxPlanRows = 500

func groupPlan(v RunView, readable bool) planGroups {
	order := []struct{ key, label string }{
		{"replace", "Replace"}, {"destroy", "Destroy"}, {"change", "Change"}, {"add", "Add"}, {"other", "Other"},
	}
	byKey := map[string][]ResourceView{}
	shown := 0
	hidden := 0
	for _, r := range v.Plan.Resources {
		if shown >= maxPlanRows {
			hidden++
			continue
		}
		shown++
		key := "other"
		switch {
		case slices.Contains(r.Actions, approval.ActionReplace):
			key = "replace"
		case slices.Contains(r.Actions, approval.ActionDelete):
			key = "destroy"
		case slices.Contains(r.Actions, approval.ActionUpdate):
			key = "change"
		case slices.Contains(r.Actions, approval.ActionCreate):
			key = "add"
		}
		byKey[key] = append(byKey[key], r)
	}
	g := planGroups{Hidden: hidden, Unreadable: !readable}
	for _, o := range order {
		if rs := byKey[o.key]; len(rs) > 0 {
			g.Groups = append(g.Groups, planGroup{Action: o.key, Label: o.label, Resources: rs})
		}
	}
	return g
}

// runModel reads what the run page shows of run for the signed-in user.
func (u *webUI) runModel(c echo.Context, run approval.Run) runPage {
	user, _ := c.Get(userKey).(config.User)
	changes, err := u.s.changes(run.Plan.SHA256)
	if err != nil {
		u.s.Logger.Warn("plan of run not readable", zap.String("run_id", run.ID), zap.String("plan_sha256", run.Plan.SHA256), zap.Error(err))
	}
	v := newRunView(run, changes)
	path := uiRunPath(run.Workspace, run.ID)
	p := runPage{
		Run: v, Path: path, Final: run.Done(), Me: user.ID, CSRF: csrfToken(c),
		Actions: actionsFor(run, user.Identity),
		Plan:    groupPlan(v, err == nil),
		Links:   u.links(run),
		Audit:   u.runAudit(c.Request().Context(), run),
	}
	p.Actions.Path, p.Actions.CSRF = path, p.CSRF
	return p
}

// links are the run's places elsewhere: its workflow in the Temporal Web
// UI, its ticket, its Slack messages.
func (u *webUI) links(run approval.Run) []link {
	var out []link
	if base := strings.TrimSuffix(u.s.Config.TemporalUIURL, "/"); base != "" {
		ns := u.s.Namespace
		if ns == "" {
			ns = "default"
		}
		out = append(out, link{"Workflow in the Temporal Web UI", base + "/namespaces/" + url.PathEscape(ns) + "/workflows/" + url.PathEscape(run.ID)})
	}
	if x := run.External; x != nil && x.Link != "" && (strings.HasPrefix(x.Link, "https://") || strings.HasPrefix(x.Link, "http://")) {
		label := "Ticket"
		if x.Ref != "" {
			label = "Ticket " + x.Ref
		}
		out = append(out, link{label + " (" + string(x.Provider) + ")", x.Link})
	}
	for _, m := range run.Messages {
		if m.Kind != "slack" || m.User != "" || m.Channel == "" || m.TS == "" {
			continue
		}
		// Slack resolves an archives link to the message in its workspace.
		out = append(out, link{"Slack message", "https://slack.com/archives/" + url.PathEscape(m.Channel) + "/p" + strings.ReplaceAll(m.TS, ".", "")})
	}
	return out
}

func uiRunPath(ws, id string) string {
	return "/ui/workspaces/" + url.PathEscape(ws) + "/runs/" + url.PathEscape(id)
}

func (u *webUI) runPage(c echo.Context) error {
	run, p, err := u.renderedRun(c)
	if err != nil {
		return err
	}
	return u.render(c, http.StatusOK, "run", run.Workspace+" / "+run.ID, p)
}

// renderedRun reads the run the path names, as the caller may see it, and
// renders its page's live regions: the page and the live endpoint alike.
func (u *webUI) renderedRun(c echo.Context) (approval.Run, runPage, error) {
	run, err := u.s.readRun(c)
	if err != nil {
		return run, runPage{}, err
	}
	p := u.runModel(c, run)
	if err := u.renderRegions(&p); err != nil {
		return run, runPage{}, err
	}
	return run, p, nil
}

// renderRegions renders the run page's live regions into p, the same way
// for the page and for the live endpoint, so their digests compare.
func (u *webUI) renderRegions(p *runPage) error {
	p.Regions, p.Hashes = map[string]template.HTML{}, map[string]string{}
	all := sha256.New()
	for _, name := range liveRegions {
		html, err := u.renderRegion("run", "region-"+name, *p)
		if err != nil {
			return fmt.Errorf("render region %s: %w", name, err)
		}
		h := regionHash(html)
		all.Write([]byte(h))
		// The region is the output of html/template: safe HTML.
		p.Regions[name] = template.HTML(html) //nolint:gosec
		p.Hashes[name] = h
	}
	p.Version = hex.EncodeToString(all.Sum(nil))[:16]
	return nil
}

// liveRegions are the parts of the run page the live endpoint renders
// again, by the id of the element they fill.
var liveRegions = []string{"summary", "reasons", "actions", "plan", "decisions", "audit"}

// liveAnswer is what the run page's script polls: each region's HTML with
// its digest, and the digest of them all.
type liveAnswer struct {
	Version string                `json:"version"`
	Final   bool                  `json:"final"`
	Regions map[string]liveRegion `json:"regions"`
}

type liveRegion struct {
	Hash string `json:"hash"`
	HTML string `json:"html"`
}

// live renders the run page's regions as they stand. With ?since= the
// digest the page has, an unchanged run is 204 No Content.
func (u *webUI) live(c echo.Context) error {
	_, p, err := u.renderedRun(c)
	if err != nil {
		return err
	}
	if c.QueryParam("since") == p.Version {
		return c.NoContent(http.StatusNoContent)
	}
	ans := liveAnswer{Version: p.Version, Final: p.Final, Regions: map[string]liveRegion{}}
	for _, name := range liveRegions {
		ans.Regions[name] = liveRegion{Hash: p.Hashes[name], HTML: string(p.Regions[name])}
	}
	return c.JSON(http.StatusOK, ans)
}

func regionHash(html string) string {
	sum := sha256.Sum256([]byte(html))
	return hex.EncodeToString(sum[:8])
}

// uiPastTense says what a decision did, for the page's confirmation.
var uiPastTense = map[approval.DecisionKind]string{
	approval.DecisionApprove:        "approved",
	approval.DecisionReject:         "rejected",
	approval.DecisionRequestChanges: "requested changes on",
	approval.DecisionRevoke:         "revoked your approval of",
	approval.DecisionCancel:         "cancelled",
	approval.DecisionBypass:         "bypassed approval of",
}

// decideForm takes a decision form and decides through decideOn, the path
// of the REST API's decision endpoints, recorded as channel "ui". The
// outcome, or the domain's refusal in its words, is shown on the run page
// the browser is sent back to.
func (u *webUI) decideForm(kind approval.DecisionKind) echo.HandlerFunc {
	return func(c echo.Context) error {
		run, err := u.s.readRun(c)
		if err != nil {
			return err
		}
		back := uiRunPath(run.Workspace, run.ID)
		form, err := c.FormParams()
		if err != nil {
			return approval.Errorf(approval.CodeInvalid, "the form could not be read")
		}
		d := decision{Kind: kind, Text: form.Get(textField[kind]), Channel: approval.ChannelUI}
		if kind == approval.DecisionApprove {
			d.ReasonIDs = form["reason_ids"]
			if len(d.ReasonIDs) == 0 {
				u.setFlash(c, "error", "Choose at least one reason to approve.")
				return c.Redirect(http.StatusSeeOther, back)
			}
		}
		// The page's script gives each submission a key, so a form sent
		// twice (a double click, a retried POST) decides once.
		if key := form.Get("key"); validFormKey(key) {
			d.IdempotencyKey = "ui-" + key
		}
		out, err := u.s.decideOn(c, run, d)
		if err != nil {
			var de *approval.Error
			if !errors.As(err, &de) && !errors.Is(err, context.DeadlineExceeded) {
				return err
			}
			_, msg := u.describe(c, err)
			u.setFlash(c, "error", "Not done: "+msg)
			return c.Redirect(http.StatusSeeOther, back)
		}
		msg := fmt.Sprintf("You %s run %s. It is now %s", uiPastTense[kind], out.ID, statusWords(out.Status))
		if kind == approval.DecisionApprove {
			var ps []string
			for _, r := range out.Reasons {
				if slices.Contains(d.ReasonIDs, r.ID) {
					ps = append(ps, r.Name+" "+r.Progress())
				}
			}
			if len(ps) > 0 {
				msg += " (" + strings.Join(ps, ", ") + ")"
			}
		}
		u.setFlash(c, "ok", msg+".")
		return c.Redirect(http.StatusSeeOther, back)
	}
}

// validFormKey accepts the keys the page's script makes: short, printable
// ASCII.
func validFormKey(key string) bool {
	if key == "" || len(key) > 64 {
		return false
	}
	for _, r := range key {
		if r > unicode.MaxASCII || !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}
