package tests

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/gateway"
)

// TestDevRestartWithTwoHundredRunsWaiting stops `gatehouse dev` with 200
// runs waiting, each half approved, and starts it again on the same data
// dir (its SQLite files): every run is still there with its approval, takes
// the next decision, and the audit trail has all of it from both lives.
func TestDevRestartWithTwoHundredRunsWaiting(t *testing.T) {
	const runs = 200
	dir := t.TempDir()
	script, err := filepath.Abs("../examples/apply.sh")
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "gatehouse.yaml")
	if err := os.WriteFile(cfgPath, []byte(renderConfig(t, script, "1h", newHookReceiver(t, "hook-secret").url)), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("APPLY_LOG", filepath.Join(dir, "applied.log"))
	start := devStarter(t, cfgPath, filepath.Join(dir, "data"), "")
	// each runs f for every run, eight at a time.
	each := func(all []gateway.RunView, f func(i int, run gateway.RunView)) {
		var wg sync.WaitGroup
		sem := make(chan struct{}, 8)
		for i, run := range all {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				f(i, run)
			}()
		}
		wg.Wait()
	}

	dev := start()
	s := &stack{t: t, url: dev.HTTPURL(), applyLog: filepath.Join(dir, "applied.log")}
	created := make([]gateway.RunView, runs)
	each(created, func(i int, _ gateway.RunView) {
		created[i] = s.createRun("prod-network", "t-alice", "prod-network.json")
		s.decide(created[i], "approve", "t-bob", map[string]string{"comment": "first half"}, http.StatusOK)
	})
	if err := dev.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	dev = start()
	defer dev.Close()
	s.url = dev.HTTPURL()
	each(created, func(i int, run gateway.RunView) {
		got := s.get(run)
		if got.Status != approval.StatusPendingApproval || got.Reasons[0].Progress != "1/2" || len(got.Decisions) != 1 || got.Decisions[0].Comment != "first half" {
			t.Errorf("run %d after the restart: %s at %s with %d decisions; want pending at 1/2 with bob's", i, got.Status, got.Reasons[0].Progress, len(got.Decisions))
			return
		}
		s.decide(run, "reject", "t-carol", map[string]string{"comment": "second life"}, http.StatusOK)
	})
	each(created, func(i int, run gateway.RunView) {
		trail := s.trail(run, "t-victor", approval.AuditRejected)
		if len(trail) != 4 || trail[2].Actor.ID != "bob" || trail[3].Actor.ID != "carol" {
			t.Errorf("run %d: trail %v; want requested, reason opened, bob's approval, carol's rejection", i, actionsOf(trail))
		}
	})
	var page struct {
		Runs []struct {
			Status approval.Status `json:"status"`
		} `json:"runs"`
		NextCursor string `json:"next_cursor"`
	}
	rejected, cursor := 0, ""
	for {
		s.call("GET", "/api/v1/workspaces/prod-network/runs?source=audit&limit=1000&cursor="+url.QueryEscape(cursor), "t-victor", nil).decode(t, &page)
		for _, r := range page.Runs {
			if r.Status == approval.StatusRejected {
				rejected++
			}
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	if rejected != runs {
		t.Errorf("the trail lists %d rejected runs; want %d", rejected, runs)
	}
	if lines := s.applied(); len(lines) != 0 {
		t.Errorf("%d applies; want none", len(lines))
	}
}
