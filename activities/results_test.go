package activities

import (
	"context"
	"encoding/json"
	"testing"
)

// TestLocalActivityResultsSayOnlyWhatTheRunUses: the results of the apply
// lock and of a notice's local attempt are kept in the run's history (in
// local-activity markers, one per run for each), so they carry nothing the
// run already knows: a granted lock does not name its holder (the run
// itself), and a notice that delivered nothing worth keeping is {}.
func TestLocalActivityResultsSayOnlyWhatTheRunUses(t *testing.T) {
	ctx := context.Background()
	locks, err := NewLockStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a := &Activities{Locks: locks}
	for _, c := range []struct {
		run, want string
	}{
		{"run-a", `{"granted":true}`},
		{"run-b", `{"granted":false,"holder":"run-a"}`},
		{"run-a", `{"granted":true}`},
	} {
		res, err := a.AcquireApplyLock(ctx, LockInput{Workspace: "ws", RunID: c.run})
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := json.Marshal(res); string(got) != c.want {
			t.Errorf("%s asks for the lock: %s; want %s", c.run, got, c.want)
		}
	}
	if got, _ := json.Marshal(NotifyOutcome{}); string(got) != `{}` {
		t.Errorf("a delivered notice with nothing to keep answers %s; want {}", got)
	}
	posted, _ := json.Marshal(NotifyOutcome{Result: NotifyResult{Failures: []string{"slack"}}})
	if string(posted) != `{"result":{"failures":["slack"]}}` {
		t.Errorf("a notice that failed on Slack answers %s; want its failure kept", posted)
	}
}
