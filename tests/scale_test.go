package tests

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/server/temporaltest"

	"github.com/gatehouse-dev/gatehouse/app"
	"github.com/gatehouse-dev/gatehouse/approval"
)

// TestTwoWorkersTwoGateways is the horizontal deployment: two gateways and
// two workers share a data dir, a config and an audit database, with no
// other link between them. Runs are created on one gateway and approved on
// both; one worker stops half-way. Every run applies exactly once, and
// either gateway answers for every run.
func TestTwoWorkersTwoGateways(t *testing.T) {
	dir, cfgPath, applyLog := writeConfig(t, exampleConfig(t))
	t.Setenv(app.DatabaseEnv, "sqlite:"+filepath.Join(dir, "audit.db"))
	opts := clusterOptions(t, temporaltest.NewServer(temporaltest.WithT(t)), dir, cfgPath)

	var gateways []*stack
	for range 2 {
		o := opts
		o.HTTPAddr = freeAddr(t)
		runInProcess(t, app.RunGateway, o)
		s := &stack{t: t, url: "http://" + o.HTTPAddr, applyLog: applyLog}
		waitReady(t, s.url)
		gateways = append(gateways, s)
	}
	first := runInProcess(t, app.RunWorker, opts)
	runInProcess(t, app.RunWorker, opts)

	const runs = 6
	var ids []string
	for i := range runs {
		if i == runs/2 {
			// One worker goes away; the other takes every task from now on.
			first.Stop(20 * time.Second)
		}
		via, other := gateways[i%2], gateways[(i+1)%2]
		run := via.createRun("prod-network", "t-alice", "prod-network.json")
		other.decide(run, "approve", "t-bob", nil, http.StatusOK)
		via.decide(run, "approve", "t-carol", nil, http.StatusOK)
		other.waitFor(run, approval.StatusApplied)
		if got := via.get(run); got.Status != approval.StatusApplied {
			t.Errorf("run %s: gateway %s says %s; the other says applied", run.ID, via.url, got.Status)
		}
		via.trail(run, "t-victor", approval.AuditApplied)
		ids = append(ids, run.ID)
	}
	lines := gateways[0].applied()
	if len(lines) != runs {
		t.Fatalf("apply ran %d times for %d runs:\n%s", len(lines), runs, strings.Join(lines, "\n"))
	}
	for _, id := range ids {
		n := 0
		for _, l := range lines {
			if strings.Contains(l, " "+id+" ") {
				n++
			}
		}
		if n != 1 {
			t.Errorf("run %s applied %d times; want once", id, n)
		}
	}
}
