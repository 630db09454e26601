package approval_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/approval"
)

// keyed is a request carrying the digest of an idempotency key.
func keyed(id, key string, who approval.Identity, comment string) approval.Request {
	q := req(id, who, comment)
	q.Key = key
	return q
}

func TestIdempotencyKeyReuse(t *testing.T) {
	// bob's approval is recorded under ID a1 with key k1.
	setup := func(t *testing.T) approval.Run {
		t.Helper()
		run := newRun(t, prodWorkspace(destroysNeedTwo), destroyPlan())
		if _, err := run.Approve(keyed("a1", "k1", bob, "lgtm"), t0); err != nil {
			t.Fatalf("bob approves: %v", err)
		}
		if got := run.Decisions[0].Key; got != "k1" {
			t.Fatalf("got decision key %q; want k1 recorded", got)
		}
		return run
	}
	for _, tc := range []struct {
		name  string
		check func(*approval.Run) error
		code  approval.Code
	}{
		// Before issue #9 a reused key was not looked at: a second request
		// under it was recorded as a decision of its own.
		{"same key, other request", func(r *approval.Run) error { return r.CheckApprove(keyed("a2", "k1", carol, "")) }, approval.CodeUnprocessable},
		{"same key, other request, other kind", func(r *approval.Run) error { return r.CheckReject(keyed("r1", "k1", carol, "no")) }, approval.CodeUnprocessable},
		{"same key, a cancel", func(r *approval.Run) error { return r.CheckCancel(keyed("c1", "k1", alice, "stop")) }, approval.CodeUnprocessable},
		{"same key, same request: a retry", func(r *approval.Run) error { return r.CheckApprove(keyed("a1", "k1", bob, "lgtm")) }, ""},
		{"another key", func(r *approval.Run) error { return r.CheckApprove(keyed("a2", "k2", carol, "")) }, ""},
		{"no key", func(r *approval.Run) error { return r.CheckApprove(keyed("a2", "", carol, "")) }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := setup(t)
			err := tc.check(&run)
			if got := approval.ErrorCode(err); got != tc.code {
				t.Fatalf("got code %q (%v); want %q", got, err, tc.code)
			}
			if tc.code == approval.CodeUnprocessable && !strings.Contains(err.Error(), "Idempotency-Key") {
				t.Errorf("error %q; want it to name the Idempotency-Key", err)
			}
		})
	}
	t.Run("a retry changes nothing", func(t *testing.T) {
		run := setup(t)
		changed, err := run.Approve(keyed("a1", "k1", bob, "lgtm"), t0.Add(time.Minute))
		if err != nil || changed || len(run.Decisions) != 1 || run.Reasons[0].Progress() != "1/2" {
			t.Errorf("got changed=%v err=%v decisions=%d progress=%s; want a no-op: false, nil, 1, 1/2", changed, err, len(run.Decisions), run.Reasons[0].Progress())
		}
	})
	t.Run("a refused reuse records nothing", func(t *testing.T) {
		run := setup(t)
		if _, err := run.Approve(keyed("a2", "k1", carol, ""), t0); approval.ErrorCode(err) != approval.CodeUnprocessable {
			t.Fatalf("got %v; want unprocessable", err)
		}
		if len(run.Decisions) != 1 || run.Reasons[0].Progress() != "1/2" {
			t.Errorf("got %d decisions, progress %s; want 1 and 1/2", len(run.Decisions), run.Reasons[0].Progress())
		}
	})
}

func TestTextLimits(t *testing.T) {
	ws := prodWorkspace(destroysNeedTwo)
	ws.AllowBypass = true
	for _, tc := range []struct {
		kind  string
		field string
		setup func(*testing.T, *approval.Run)
		check func(*approval.Run, string) error
	}{
		{"approve", "comment", nil, func(r *approval.Run, s string) error { return r.CheckApprove(req("a", bob, s)) }},
		{"revoke", "comment", func(t *testing.T, r *approval.Run) { mustApprove(t, r, "a0", bob, t0) },
			func(r *approval.Run, s string) error { return r.CheckRevoke(req("rv", bob, s)) }},
		{"reject", "comment", nil, func(r *approval.Run, s string) error { return r.CheckReject(req("rj", carol, s)) }},
		{"request changes", "comment", nil, func(r *approval.Run, s string) error { return r.CheckRequestChanges(req("rc", carol, s)) }},
		{"revise plan", "comment", nil, func(r *approval.Run, s string) error { return r.CheckRevisePlan(req("rp", alice, s)) }},
		{"renotify", "comment", nil, func(r *approval.Run, s string) error { return r.CheckRenotify(req("rn", alice, s), t0) }},
		{"cancel", "message", nil, func(r *approval.Run, s string) error { return r.CheckCancel(req("cn", alice, s)) }},
		{"bypass", "justification", nil, func(r *approval.Run, s string) error { return r.CheckBypass(req("bp", erin, s)) }},
	} {
		for _, size := range []struct {
			name string
			text string
			code approval.Code
		}{
			{"at the limit", strings.Repeat("x", approval.MaxCommentBytes), ""},
			{"one byte over", strings.Repeat("x", approval.MaxCommentBytes+1), approval.CodeInvalid},
			// 2,049 characters, 4,098 bytes: the limit counts bytes.
			{"over in bytes, not runes", strings.Repeat("é", approval.MaxCommentBytes/2+1), approval.CodeInvalid},
		} {
			t.Run(tc.kind+" "+size.name, func(t *testing.T) {
				run := newRun(t, ws, destroyPlan())
				if tc.setup != nil {
					tc.setup(t, &run)
				}
				err := tc.check(&run, size.text)
				if got := approval.ErrorCode(err); got != size.code {
					t.Fatalf("got code %q (%v); want %q", got, err, size.code)
				}
				if size.code != "" && !strings.HasPrefix(err.Error(), tc.field+": longer than 4096 bytes") {
					t.Errorf("got error %q; want it to name the field %q and the limit", err, tc.field)
				}
			})
		}
	}
}

func TestCheckText(t *testing.T) {
	for _, tc := range []struct {
		text  string
		limit int
		code  approval.Code
	}{
		{"", 0, ""},
		{"abc", 3, ""},
		{"abcd", 3, approval.CodeInvalid},
	} {
		err := approval.CheckText("message", tc.text, tc.limit)
		if got := approval.ErrorCode(err); got != tc.code {
			t.Errorf("CheckText(%q, %d): got %q (%v); want %q", tc.text, tc.limit, got, err, tc.code)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "message: ") {
			t.Errorf("CheckText(%q, %d): got %q; want it to start with the field name", tc.text, tc.limit, err)
		}
	}
}

func TestMaxDecisions(t *testing.T) {
	// Any four of platform and security: bob, carol and dave can approve,
	// so the reason stays open however the trail grows.
	quorum := approval.Rule{Name: "quorum", Approvers: approval.Approvers{Groups: []string{"platform", "security"}}, MinApprovals: 4}
	ws := prodWorkspace(quorum)
	ws.AllowBypass = true
	run := newRun(t, ws, destroyPlan())
	at := t0
	for i := 0; len(run.Decisions) < approval.MaxDecisions-2; i++ {
		at = at.Add(time.Second)
		mustApprove(t, &run, fmt.Sprintf("ap-%d", i), bob, at)
		if err := run.Revoke(req(fmt.Sprintf("rv-%d", i), bob, ""), at); err != nil {
			t.Fatalf("bob revokes (%d decisions): %v", len(run.Decisions), err)
		}
	}
	mustApprove(t, &run, "bob-last", bob, at) // decision 199
	if err := run.CheckApprove(req("carol", carol, "")); err != nil {
		t.Fatalf("one below the limit: got %v; want an approval taken", err)
	}
	mustApprove(t, &run, "carol", carol, at) // decision 200
	if got := len(run.Decisions); got != approval.MaxDecisions {
		t.Fatalf("got %d decisions; want %d", got, approval.MaxDecisions)
	}
	revised := planWith("p2", delA)
	for _, tc := range []struct {
		name   string
		do     func(*approval.Run) error
		code   approval.Code
		status approval.Status
	}{
		{"approve", func(r *approval.Run) error { _, err := r.Approve(req("dave", dave, ""), at); return err }, approval.CodeConflict, approval.StatusPendingApproval},
		{"revoke", func(r *approval.Run) error { return r.Revoke(req("rv", bob, ""), at) }, approval.CodeConflict, approval.StatusPendingApproval},
		{"renotify", func(r *approval.Run) error { _, err := r.Renotify(req("rn", alice, ""), at); return err }, approval.CodeConflict, approval.StatusPendingApproval},
		{"request changes", func(r *approval.Run) error { return r.RequestChanges(req("rc", dave, "split"), at) }, approval.CodeConflict, approval.StatusPendingApproval},
		{"revise plan", func(r *approval.Run) error {
			return r.RevisePlan(req("rp", alice, ""), revised.PlanSummary, nil, approval.Evaluate(ws, revised, nil, alice, directory), at)
		}, approval.CodeConflict, approval.StatusPendingApproval},
		{"reject", func(r *approval.Run) error { return r.Reject(req("rj", dave, "enough"), at) }, "", approval.StatusRejected},
		{"cancel", func(r *approval.Run) error { return r.Cancel(req("cn", alice, "enough"), at) }, "", approval.StatusCancelled},
		{"bypass", func(r *approval.Run) error { _, err := r.Bypass(req("bp", erin, "prod is down"), at); return err }, "", approval.StatusApproved},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := run.Clone()
			err := tc.do(&run)
			if got := approval.ErrorCode(err); got != tc.code {
				t.Fatalf("got code %q (%v); want %q", got, err, tc.code)
			}
			if run.Status != tc.status {
				t.Errorf("got status %s; want %s", run.Status, tc.status)
			}
			want := approval.MaxDecisions
			if tc.code == "" {
				want++ // the decision that ends the run is recorded
			} else if !strings.Contains(err.Error(), "200 decisions") {
				t.Errorf("got error %q; want it to say the run has 200 decisions", err)
			}
			if got := len(run.Decisions); got != want {
				t.Errorf("got %d decisions; want %d", got, want)
			}
		})
	}
}

func TestAddNotifyFailureIsBounded(t *testing.T) {
	for _, tc := range []struct {
		add, kept, dropped int
	}{
		{0, 0, 0},
		{1, 1, 0},
		{approval.MaxNotifyFailures, approval.MaxNotifyFailures, 0},
		{approval.MaxNotifyFailures + 1, approval.MaxNotifyFailures, 1},
		{approval.MaxNotifyFailures + 25, approval.MaxNotifyFailures, 25},
	} {
		t.Run(fmt.Sprint(tc.add), func(t *testing.T) {
			run := newRun(t, prodWorkspace(destroysNeedTwo), destroyPlan())
			for i := range tc.add {
				run.AddNotifyFailure(approval.NotifyFailure{EventID: fmt.Sprintf("e%d", i), Kind: "reminder", Error: "slack: 503", At: t0.Add(time.Duration(i) * time.Minute)})
			}
			if got := len(run.NotifyFailures); got != tc.kept || run.NotifyFailuresDropped != tc.dropped {
				t.Fatalf("got %d kept, %d dropped; want %d, %d", got, run.NotifyFailuresDropped, tc.kept, tc.dropped)
			}
			if tc.kept == 0 {
				return
			}
			// The latest are kept, in order.
			first, last := run.NotifyFailures[0].EventID, run.NotifyFailures[tc.kept-1].EventID
			if wantFirst, wantLast := fmt.Sprintf("e%d", tc.dropped), fmt.Sprintf("e%d", tc.add-1); first != wantFirst || last != wantLast {
				t.Errorf("got %s..%s kept; want %s..%s", first, last, wantFirst, wantLast)
			}
		})
	}
}
