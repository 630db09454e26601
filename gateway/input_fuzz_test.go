package gateway

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/slack-go/slack"

	"github.com/gatehouse-dev/gatehouse/activities"
	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/plan"
	"github.com/gatehouse-dev/gatehouse/starter"
)

// These fuzz the gateway's reading of what callers send, below the
// handlers (which need a starter and a Temporal server): the body decoding
// and validation of the REST API, Slack's interaction payloads and
// signatures, and GitHub's deliveries. A refusal must be an approval.Error
// with CodeInvalid, which handleError answers with a 400: anything else
// becomes a 500, which tells a client to retry what will never work, and
// pages someone about input that was merely wrong.

// fuzzInvalid fails unless err is a refusal the gateway answers with a 400.
func fuzzInvalid(t *testing.T, err error) {
	t.Helper()
	var de *approval.Error
	if !errors.As(err, &de) || de.Code != approval.CodeInvalid {
		t.Fatalf("refused with %T %v: not an approval.Error of code invalid, so not a 400", err, err)
	}
	if statusOf[de.Code] != http.StatusBadRequest {
		t.Fatalf("code %s answers %d", de.Code, statusOf[de.Code])
	}
}

// fuzzContext is an Echo context of a POST with body.
func fuzzContext(body []byte, contentType string) echo.Context {
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	req.Header.Set(echo.HeaderContentType, contentType)
	return echo.New().NewContext(req, httptest.NewRecorder())
}

// fuzzFiles reads the fixtures matching glob, failing when there are none:
// a moved fixture would otherwise leave a target without seeds, silently.
func fuzzFiles(f *testing.F, glob string) [][]byte {
	f.Helper()
	files, err := filepath.Glob(glob)
	if err != nil || len(files) == 0 {
		f.Fatalf("no fixtures match %s (%v)", glob, err)
	}
	var out [][]byte
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, data)
	}
	return out
}

// fuzzPlans and fuzzCosts are the real plans and Infracost estimates in the
// repository, seeds for the bodies that carry them.
func fuzzPlans(f *testing.F) [][]byte {
	return append(fuzzFiles(f, "../examples/plans/*.json"), fuzzFiles(f, "../plan/testdata/tfjson-*.json")...)
}

func fuzzCosts(f *testing.F) [][]byte {
	return append(fuzzFiles(f, "../examples/cost/*.json"), fuzzFiles(f, "../cost/testdata/breakdown*.json")...)
}

// fuzzBoundary is the multipart boundary of the form bodies.
const fuzzBoundary = "gatehousefuzzboundary"

// fuzzForm is a create-run form as `curl -F` sends it.
func fuzzForm(files map[string][]byte, values map[string]string) []byte {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	_ = w.SetBoundary(fuzzBoundary)
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range files {
			if !yield(k) {
				return
			}
		}
	}) {
		fw, _ := w.CreateFormFile(name, name+".json")
		_, _ = fw.Write(files[name])
	}
	for k, v := range values {
		_ = w.WriteField(k, v)
	}
	_ = w.Close()
	return buf.Bytes()
}

// FuzzCreateRunBody: the create-run body, as JSON or as a multipart form,
// through every check createRun makes before it starts anything (for a
// workspace that does not plan itself): decodeCreateRun, the message's
// length, the ref, and the plan and cost documents. Whatever it refuses is a
// 400; what it accepts is hashed as submitted.
func FuzzCreateRunBody(f *testing.F) {
	plans, costs := fuzzPlans(f), fuzzCosts(f)
	for i, p := range plans {
		c := costs[i%len(costs)]
		body, _ := json.Marshal(map[string]any{"plan": json.RawMessage(p), "cost": json.RawMessage(c), "message": "fuzz", "ref": "refs/heads/main"})
		f.Add(body, false)
		f.Add(fuzzForm(map[string][]byte{"plan": p, "cost": c}, map[string]string{"message": "fuzz"}), true)
	}
	f.Add([]byte(`{"plan": null, "ref": "-x"}`), false)
	f.Add([]byte(`{"plan": {}, "plan_file": "not base64", "on_behalf_of": 1}`), false)
	f.Add([]byte(`{"plan": "{}"} {}`), false)
	f.Add(fuzzForm(nil, map[string]string{"nonsense": "x"}), true)
	f.Add([]byte("--"+fuzzBoundary+"\r\nContent-Disposition: form-data; name=\"plan\"\r\n\r\n{"), true)
	f.Fuzz(func(t *testing.T, data []byte, form bool) {
		ct := echo.MIMEApplicationJSON
		if form {
			ct = echo.MIMEMultipartForm + "; boundary=" + fuzzBoundary
		}
		body, err := decodeCreateRun(fuzzContext(data, ct))
		if err == nil {
			err = approval.CheckText("message", body.Message, approval.MaxMessageBytes)
		}
		if err == nil {
			err = checkRef(body.Ref)
		}
		var sub submission
		if err == nil {
			sub, err = parseSubmission(body.Plan, body.Cost)
		}
		if err != nil {
			fuzzInvalid(t, err)
			return
		}
		raw := bytes.TrimSpace(body.Plan)
		if sub.plan.SHA256 != plan.Hash(raw) || len(sub.docs) == 0 || !bytes.Equal(sub.docs[0], raw) {
			t.Fatalf("the plan stored (%d docs) is not the plan submitted, hashed %s", len(sub.docs), sub.plan.SHA256)
		}
		if (sub.cost != nil) != !isEmpty(body.Cost) {
			t.Fatalf("cost %v from field %q", sub.cost, body.Cost)
		}
	})
}

// FuzzRevisePlanBody: the revised plan's body, as revisePlan reads it.
func FuzzRevisePlanBody(f *testing.F) {
	for _, p := range fuzzPlans(f) {
		body, _ := json.Marshal(map[string]any{"plan": json.RawMessage(p)})
		f.Add(body)
	}
	f.Add([]byte(`{"plan": {"format_version": "1.2"}, "cost": {"version": "0.2"}}`))
	f.Add([]byte(`{"plan": {"format_version": "1.2"}, "comment": "x"}`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, data []byte) {
		var body revisePlanBody
		err := decodeBody(fuzzContext(data, echo.MIMEApplicationJSON), &body, true)
		if err == nil {
			_, err = parseSubmission(body.Plan, body.Cost)
		}
		if err != nil {
			fuzzInvalid(t, err)
		}
	})
}

// fuzzKinds are the decisions the REST API takes a decisionBody for, in a
// fixed order so a corpus entry always means the same kind.
var fuzzKinds = slices.Sorted(func(yield func(approval.DecisionKind) bool) {
	for k := range textField {
		if !yield(k) {
			return
		}
	}
})

// FuzzDecisionBody: a decision's body, for each kind, as decide reads it.
// Accepted, it carries only the text field and reasons its kind takes.
func FuzzDecisionBody(f *testing.F) {
	for i := range fuzzKinds {
		k := uint8(i)
		f.Add([]byte(`{"comment": "looks fine", "reason_ids": ["destroys-need-two"]}`), k)
		f.Add([]byte(`{"message": "superseded"}`), k)
		f.Add([]byte(`{"justification": "outage INC-1"}`), k)
		f.Add([]byte(``), k)
	}
	f.Add([]byte(`{"comment": 1}`), uint8(0))
	f.Add([]byte(`{"comment": "a"} trailing`), uint8(0))
	f.Add([]byte(`{"Comment": "a", "unknown": true}`), uint8(0))
	f.Add([]byte(`[]`), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, k uint8) {
		kind := fuzzKinds[int(k)%len(fuzzKinds)]
		var body decisionBody
		err := decodeBody(fuzzContext(data, echo.MIMEApplicationJSON), &body, requiresBody(kind))
		var text string
		if err == nil {
			text, err = body.text(kind)
		}
		if err != nil {
			fuzzInvalid(t, err)
			return
		}
		if requiresBody(kind) && len(bytes.TrimSpace(data)) == 0 {
			t.Fatalf("%s accepted without a body", kind)
		}
		fields := map[string]*string{"comment": body.Comment, "message": body.Message, "justification": body.Justification}
		for name, v := range fields {
			if name != textField[kind] && v != nil {
				t.Fatalf("%s accepted a %s", kind, name)
			}
		}
		if v := fields[textField[kind]]; (v == nil && text != "") || (v != nil && *v != text) {
			t.Fatalf("%s: text %q is not the %s given", kind, text, textField[kind])
		}
		if body.ReasonIDs != nil && kind != approval.DecisionApprove && kind != approval.DecisionCancel {
			t.Fatalf("%s accepted reason_ids", kind)
		}
	})
}

// FuzzSlackPayload: the payload form field of a Slack interaction, read as
// slackInteraction reads it once the signature checks out, then through
// what the handler derives from it before it asks anyone anything: the run
// a button names, the idempotency keys, the modal's metadata and comment.
// The payload is fuzzed as JSON and form-encoded here, which is where its
// structure is; form decoding is net/http's.
func FuzzSlackPayload(f *testing.F) {
	f.Add(`{"type":"block_actions","trigger_id":"trig-1","team":{"id":"T1"},"user":{"id":"UALICE"},"channel":{"id":"C1"},"container":{"type":"message","message_ts":"100.1","channel_id":"C1"},"actions":[{"type":"button","block_id":"` + activities.ActionsBlockID + `","action_id":"` + activities.ActionApprove + `","value":"prod-network/r-1","action_ts":"100.2"}]}`)
	f.Add(`{"type":"block_actions","user":{"id":"U1"},"message":{"ts":"1.2"},"actions":[{"action_id":"` + activities.ActionReject + `","value":"/"}]}`)
	f.Add(`{"type":"view_submission","user":{"id":"UALICE"},"view":{"id":"V1","callback_id":"` + slackModalCallback + `","private_metadata":"{\"ws\":\"prod-network\",\"run\":\"r-1\",\"kind\":\"reject\",\"channel\":\"C1\"}","state":{"values":{"` + slackCommentBlock + `":{"` + slackCommentAction + `":{"type":"plain_text_input","value":" no \"}}}}}}`)
	f.Add(`{"type":"view_submission","view":{"private_metadata":"[","state":{"values":null}}}`)
	f.Add(`{"type":"shortcut","user":{"id":"UALICE"}}`)
	f.Add(`{"type":"block_actions","actions":[{"type":"static_select","selected_option":{"value":"x"}}],"state":{"values":{"b":{"a":{"type":"datepicker","selected_date":"x"}}}}}`)
	f.Fuzz(func(t *testing.T, payload string) {
		body := url.Values{"payload": {payload}}.Encode()
		req := httptest.NewRequest(http.MethodPost, "/api/v1/slack/interactions", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		cb, err := slack.InteractionCallbackParse(req)
		if err != nil {
			return // answered 200 and logged: nothing else happens
		}
		_ = slackChannelOf(cb)
		for _, act := range cb.ActionCallback.BlockActions {
			if act == nil {
				continue
			}
			if target, ok := parseSlackTarget(act.Value); ok {
				if target.Workspace == "" || !starter.ValidRunID(target.RunID) || target.Workspace+"/"+target.RunID != act.Value {
					t.Fatalf("value %q names %+v", act.Value, target)
				}
			}
			fuzzKey(t, blockActionKey(cb, act, approval.Run{}))
		}
		fuzzKey(t, slackKey("slack", cb.View.ID))
		_ = submittedComment(cb.View)
		var meta slackModalMeta
		_ = json.Unmarshal([]byte(cb.View.PrivateMetadata), &meta)
	})
}

// fuzzKey fails unless key is one idempotencyKey accepts: Slack's ids
// become Idempotency-Keys, and a key the API would refuse is a decision
// that cannot be recorded.
func fuzzKey(t *testing.T, key string) {
	t.Helper()
	if len(key) > maxIdempotencyKey || !printableASCII(key) {
		t.Fatalf("idempotency key %q breaks the key rules", key)
	}
}

// FuzzVerifySlack: a Slack request verifies only with the v0 signature of
// its own body under the signing secret, whatever the body.
func FuzzVerifySlack(f *testing.F) {
	click := clickBody("UALICE", activities.ActionApprove, "prod-network/r-1")
	f.Add([]byte(click), []byte(click+"&x=1"))
	f.Add([]byte(""), []byte("payload="))
	f.Add([]byte("payload=%7B%7D"), []byte("payload=%7b%7d"))
	const secret = "slack-secret"
	f.Fuzz(func(t *testing.T, body, other []byte) {
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		header := func(sigOf []byte, key string) http.Header {
			mac := hmac.New(sha256.New, []byte(key))
			mac.Write([]byte("v0:" + ts + ":"))
			mac.Write(sigOf)
			h := http.Header{}
			h.Set("X-Slack-Request-Timestamp", ts)
			h.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
			return h
		}
		if err := verifySlack(header(body, secret), body, secret); err != nil {
			t.Fatalf("the right signature does not verify: %v", err)
		}
		if verifySlack(header(body, "another-secret"), body, secret) == nil {
			t.Fatal("a signature under another secret verifies")
		}
		if !bytes.Equal(body, other) && verifySlack(header(other, secret), body, secret) == nil {
			t.Fatalf("the signature of %q verifies %q", other, body)
		}
	})
}

// FuzzGitHubEvent: a GitHub delivery, as gitHubWebhook reads it once its
// signature checks out. A change it accepts names a repository, a branch
// git would take and commit ids, and only the HMAC of the body verifies it.
func FuzzGitHubEvent(f *testing.F) {
	for _, file := range []string{"push.json", "push.new-branch.json", "pull_request.closed.merged.json", "pull_request.closed.unmerged.json"} {
		data, err := os.ReadFile(filepath.Join("testdata/github", file))
		if err != nil {
			f.Fatal(err)
		}
		event, _, _ := strings.Cut(file, ".")
		f.Add(event, data)
	}
	f.Add("push", []byte(`{"ref":"refs/heads/-x","after":"0000000000000000000000000000000000000001"}`))
	f.Add("", []byte(`{}`))
	f.Add("issues", []byte(`[`))
	const secret = "github-secret"
	f.Fuzz(func(t *testing.T, event string, raw []byte) {
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(raw)
		sig := "sha256=" + hex.EncodeToString(mac.Sum(nil))
		if err := verifyGitHubSignature(secret, sig, raw); err != nil {
			t.Fatalf("the right signature does not verify: %v", err)
		}
		if verifyGitHubSignature(secret, sig, append(slices.Clip(raw), ' ')) == nil {
			t.Fatal("the signature of the body verifies another body")
		}
		ch, ignored, err := parseGitHubEvent(event, raw)
		if err != nil {
			fuzzInvalid(t, err)
			return
		}
		if ignored != "" {
			return
		}
		if ch.Repository == "" || checkRef(ch.Branch) != nil || !commitID.MatchString(ch.Commit) || (ch.Since != "" && !commitID.MatchString(ch.Since)) {
			t.Fatalf("accepted an unusable change %+v", ch)
		}
	})
}
