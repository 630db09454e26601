package workflows_test

import (
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"

	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/workflows"
)

// TestUpsertsWriteOnlyWhatChanged: the first upsert of a run writes every
// attribute, later ones (lean-3) only those that changed. The workspace,
// requester and environment never change, so they are written once; the
// run's status ends applied with nothing pending.
func TestUpsertsWriteOnlyWhatChanged(t *testing.T) {
	upserts, last := recordUpserts(t, nil)
	constant := []string{workflows.WorkspaceKey.GetName(), workflows.RequestedByKey.GetName(), workflows.EnvironmentKey.GetName()}
	if len(upserts) < 3 {
		t.Fatalf("upserts %v; want one per task that changed the run", upserts)
	}
	for _, k := range append(constant, workflows.StatusKey.GetName(), workflows.PendingApproversKey.GetName(), workflows.DeadlineKey.GetName()) {
		if !slices.Contains(upserts[0], k) {
			t.Errorf("first upsert %v lacks %s", upserts[0], k)
		}
	}
	for i, names := range upserts[1:] {
		for _, k := range constant {
			if slices.Contains(names, k) {
				t.Errorf("upsert %d %v writes %s again", i+2, names, k)
			}
		}
	}
	// bob's approval leaves the status and the deadline as they were.
	if names := upserts[1]; slices.Contains(names, workflows.StatusKey.GetName()) || slices.Contains(names, workflows.DeadlineKey.GetName()) || !slices.Contains(names, workflows.PendingApproversKey.GetName()) {
		t.Errorf("bob's upsert %v; want only who is pending", names)
	}
	if status, _ := last.GetKeyword(workflows.StatusKey); status != string(approval.StatusApplied) {
		t.Errorf("last upsert's status %q; want applied", status)
	}
}

// TestFirstUpsertLeavesWhatTheStartSet: the gateway starts a run with its
// workspace as a search attribute (so it can be listed before its first
// task), and the first upsert does not write it again; a run started with
// another workspace in it (no gateway does that) gets it corrected.
func TestFirstUpsertLeavesWhatTheStartSet(t *testing.T) {
	for start, want := range map[string]bool{"prod-network": false, "staging": true} {
		sa := temporal.NewSearchAttributes(workflows.WorkspaceKey.ValueSet(start))
		upserts, _ := recordUpserts(t, &sa)
		if len(upserts) == 0 {
			t.Fatal("no upserts")
		}
		if got := slices.Contains(upserts[0], workflows.WorkspaceKey.GetName()); got != want {
			t.Errorf("started with workspace %s: first upsert %v; want the workspace written: %v", start, upserts[0], want)
		}
		if !slices.Contains(upserts[0], workflows.RequestedByKey.GetName()) {
			t.Errorf("started with workspace %s: first upsert %v lacks the requester", start, upserts[0])
		}
	}
}

// recordUpserts runs a two-approval run to applied, started with the
// search attributes atStart, and lists the attributes each upsert wrote.
func recordUpserts(t *testing.T, atStart *temporal.SearchAttributes) (upserts [][]string, last temporal.SearchAttributes) {
	t.Helper()
	h := newHarness(t)
	if atStart != nil {
		if err := h.env.SetTypedSearchAttributesOnStart(*atStart); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	h.env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
		mu.Lock()
		defer mu.Unlock()
		sa := args.Get(0).(temporal.SearchAttributes)
		var names []string
		for k := range sa.GetUntypedValues() {
			names = append(names, k.GetName())
		}
		sort.Strings(names)
		upserts, last = append(upserts, names), sa
	}).Return(nil)
	h.update(time.Minute, workflows.UpdateApprove, "u-bob", approval.Request{Actor: bob})
	h.update(2*time.Minute, workflows.UpdateApprove, "u-carol", approval.Request{Actor: carol})
	setWorkflowID(h.env)
	if got := h.run(input(destroysNeedTwo)); got.Status != approval.StatusApplied {
		t.Fatalf("run %s; want applied", got.Status)
	}
	return upserts, last
}
