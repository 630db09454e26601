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
	h := newHarness(t)
	var mu sync.Mutex
	var upserts [][]string
	var last temporal.SearchAttributes
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
