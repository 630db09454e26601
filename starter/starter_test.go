package starter

import (
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/workflows"
)

// TestUpdateIDBelongsToCallerActionKeyAndBody: one caller retrying one
// request lands on one Update; anyone or anything else under the same key is
// another Update (which the workflow then refuses as a reused key), while
// the key's digest is the same for all, so the reuse can be seen.
func TestUpdateIDBelongsToCallerActionKeyAndBody(t *testing.T) {
	bob := approval.Identity{ID: "bob"}
	carol := approval.Identity{ID: "carol"}
	req := func(actor approval.Identity, comment string) approval.Request {
		return approval.Request{Actor: actor, Comment: comment, Channel: "api"}
	}
	id := func(update string, actor approval.Identity, key, comment string) (string, string) {
		r := req(actor, comment)
		return updateID(update, DecisionRequest{Actor: actor, IdempotencyKey: key}, r)
	}
	first, key := id(workflows.UpdateApprove, bob, "k", "ok")
	again, keyAgain := id(workflows.UpdateApprove, bob, "k", "ok")
	if first != again || key != keyAgain {
		t.Fatalf("a retry got %s/%s then %s/%s; want the same Update ID and key digest", first, key, again, keyAgain)
	}
	for name, other := range map[string][2]string{
		"another caller":  func() [2]string { a, b := id(workflows.UpdateApprove, carol, "k", "ok"); return [2]string{a, b} }(),
		"another action":  func() [2]string { a, b := id(workflows.UpdateRevoke, bob, "k", "ok"); return [2]string{a, b} }(),
		"another comment": func() [2]string { a, b := id(workflows.UpdateApprove, bob, "k", "changed"); return [2]string{a, b} }(),
	} {
		if other[0] == first {
			t.Errorf("%s under the same key got the same Update ID %s; want another", name, first)
		}
		if other[1] != key {
			t.Errorf("%s: key digest %s; want %s, so the workflow sees the reuse", name, other[1], key)
		}
	}
	if strings.Contains(first, "k") && !strings.HasPrefix(first, "d-") {
		t.Errorf("Update ID %q; want a derived d- id that does not expose the key", first)
	}
	noKey1, k1 := id(workflows.UpdateApprove, bob, "", "ok")
	noKey2, _ := id(workflows.UpdateApprove, bob, "", "ok")
	if noKey1 == noKey2 || k1 != "" {
		t.Errorf("without a key: %s and %s (key %q); want two fresh ids and no key", noKey1, noKey2, k1)
	}
}

func TestValidRunID(t *testing.T) {
	for id, want := range map[string]bool{
		"run-01a2339e-63f9-7acb-8e8c-703bdf26d876": true,
		"run-6f3a":               true,
		"":                       false,
		"run\x00":                false,
		"run\n1":                 false,
		"run 1":                  false,
		"run-\xff\xfe":           false,
		"run-é":                  false,
		strings.Repeat("r", 256): false,
		strings.Repeat("r", 255): true,
	} {
		if got := ValidRunID(id); got != want {
			t.Errorf("ValidRunID(%q) = %v; want %v", id, got, want)
		}
	}
}

func TestSameSubmission(t *testing.T) {
	run := approval.Run{
		Message: "m", Plan: approval.PlanSummary{SHA256: "p2"}, Cost: &approval.CostSummary{SHA256: "c"},
		Rounds: []approval.Round{{Plan: approval.PlanSummary{SHA256: "p1"}}},
	}
	req := StartRequest{Message: "m", Plan: approval.Plan{PlanSummary: approval.PlanSummary{SHA256: "p1"}}, Cost: &approval.CostSummary{SHA256: "c"}}
	if !sameSubmission(run, req) {
		t.Error("the first round's plan, message and estimate: want the same submission")
	}
	for name, mutate := range map[string]func(*StartRequest){
		"another plan":     func(r *StartRequest) { r.Plan.SHA256 = "p3" },
		"another message":  func(r *StartRequest) { r.Message = "n" },
		"another estimate": func(r *StartRequest) { r.Cost = nil },
		"another submitter": func(r *StartRequest) {
			r.SubmittedBy = &approval.Identity{ID: "ci"}
		},
	} {
		r := req
		mutate(&r)
		if sameSubmission(run, r) {
			t.Errorf("%s: want a different submission", name)
		}
	}
}

// TestRandomDecisionIDsAreShortAndFresh: a decision without an idempotency
// key gets an 18-character ID ("d-" and 80 random bits in base32), as
// Temporal writes it four times into history; a UUID took 38.
func TestRandomDecisionIDsAreShortAndFresh(t *testing.T) {
	seen := map[string]bool{}
	for range 10000 {
		id, key := updateID(workflows.UpdateApprove, DecisionRequest{Actor: approval.Identity{ID: "bob"}}, approval.Request{})
		if len(id) != 18 || !strings.HasPrefix(id, "d-") || strings.Trim(id[2:], "abcdefghijklmnopqrstuvwxyz234567") != "" || key != "" {
			t.Fatalf("Update ID %q (key %q); want d- and 16 base32 letters, no key", id, key)
		}
		if seen[id] {
			t.Fatalf("Update ID %s twice in %d", id, len(seen))
		}
		seen[id] = true
	}
}
