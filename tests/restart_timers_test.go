package tests

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/app"
	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/gateway"
)

// timerWorkspace renders a workspace that wants two approvals from platform,
// reminds every remindEvery and fails closed (cancel) after timeout.
func timerWorkspace(name, script string, remindEvery, timeout time.Duration) string {
	return fmt.Sprintf(`  - name: %s
    environment: production
    timeout: %s
    remind_every: %s
    on_timeout: cancel
    supersede: false
    apply: {command: [%q], dir: ".", env_from: [APPLY_LOG]}
    rules:
      - {name: two-of-platform, approvers: {groups: [platform]}, min_approvals: 2}
`, name, timeout, remindEvery, script)
}

// timerDev writes, in a fresh directory, renderConfig's config followed by
// the workspaces workspaces renders (given the apply script's path), points
// APPLY_LOG at a log there, and returns a starter of gatehouse dev on that
// config and data dir, and the log's path.
func timerDev(t *testing.T, workspaces func(script string) string) (func() *app.Dev, string) {
	t.Helper()
	dir := t.TempDir()
	script, err := filepath.Abs("../examples/apply.sh")
	if err != nil {
		t.Fatal(err)
	}
	yaml := renderConfig(t, script, "1h", "http://127.0.0.1:9/unused") + workspaces(script)
	cfgPath := filepath.Join(dir, "gatehouse.yaml")
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	applyLog := filepath.Join(dir, "applied.log")
	t.Setenv("APPLY_LOG", applyLog)
	return devStarter(t, cfgPath, filepath.Join(dir, "data"), ""), applyLog
}

// eightAtATime runs f for i from from to to-1, eight at a time, and waits
// for all of them.
func eightAtATime(from, to int, f func(i int)) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := from; i < to; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			f(i)
		}()
	}
	wg.Wait()
}

// trailUntil reads the run's audit trail, oldest first, until its last
// entry is last, and reports an error once until has passed. It fails
// nothing itself, so that goroutines may call it.
func trailUntil(s *stack, run gateway.RunView, last approval.AuditAction, until time.Time) ([]approval.AuditEvent, error) {
	for {
		r := s.call("GET", "/api/v1/audit?limit=1000&run="+url.QueryEscape(run.ID), "t-victor", nil)
		if r.status != http.StatusOK {
			return nil, fmt.Errorf("audit trail of %s: %d %s", run.ID, r.status, r.body)
		}
		var page auditPage
		if err := json.Unmarshal(r.body, &page); err != nil {
			return nil, fmt.Errorf("audit trail of %s: %w", run.ID, err)
		}
		events := slices.Clone(page.Events)
		slices.Reverse(events)
		if len(events) > 0 && events[len(events)-1].Action == last {
			return events, nil
		}
		if time.Now().After(until) {
			return events, fmt.Errorf("trail of %s: %v; want it to end with %s", run.ID, actionsOf(events), last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestDevRestartWithTwoHundredRunsOnTimers stops `gatehouse dev` with 200
// runs half approved, each waiting on durable timers (a reminder and a
// deadline), and starts it again on the same data dir. The timers set in
// the first life must fire in the second: every run is reminded after the
// restart with its first approval intact; 190 runs then get their second
// approval and apply exactly once; the other 10 reach their deadline and
// end timed_out without applying. Every run ends in a status its audit
// trail agrees with.
//
// The figures. Creating and half approving 200 runs takes 10 to 25 s on
// two shared cores. After the restart a timer fires on time, but the run's
// first workflow task waits out the dead worker's sticky queue (5 s), then
// its turn behind the other runs' first tasks: it starts up to about 25 s
// after the timer was due while the cores are busy. A run whose task starts
// past its deadline times out without the reminder (fail closed, as it
// should). So:
//   - the 190 runs to approve remind every 8 s and have a deadline (5m) no
//     slow first life or busy second life reaches;
//   - the 10 runs left to time out are created last, in a workspace of their
//     own that reminds every 4 s, so their first reminder is due after the
//     close, and their 30 s deadline leaves 26 s for it to be written first.
//
// Reminders repeat, so every run has one due after the restart however long
// the first life took; a run whose first reminder was due after the close
// must have none from before it.
func TestDevRestartWithTwoHundredRunsOnTimers(t *testing.T) {
	const (
		runs        = 200
		timeouts    = 10 // the last runs created, left to their deadline
		workspaces  = 20 // for the other 190: one apply at a time per workspace
		remindEvery = 8 * time.Second
		longTimeout = 5 * time.Minute
		deadlineWS  = "timers-deadline"
		remindSoon  = 4 * time.Second // deadlineWS's
		deadline    = 30 * time.Second
	)
	// Runs to apply are spread over workspaces because a queued run asks for
	// its workspace's apply lock again only every 10 s in gatehouse dev: the
	// test would wait on the queue, not on the timers it is about.
	applyWS := func(i int) string { return fmt.Sprintf("timers-%02d", i%workspaces) }
	var names []string
	start, applyLog := timerDev(t, func(script string) string {
		yaml := ""
		for k := range workspaces {
			names = append(names, applyWS(k))
			yaml += timerWorkspace(applyWS(k), script, remindEvery, longTimeout)
		}
		names = append(names, deadlineWS)
		return yaml + timerWorkspace(deadlineWS, script, remindSoon, deadline)
	})
	each := eightAtATime
	timesOut := func(i int) bool { return i >= runs-timeouts }
	interval := func(i int) time.Duration {
		if timesOut(i) {
			return remindSoon
		}
		return remindEvery
	}

	// First life: every run opens its reason, has bob's approval and waits
	// on its reminder and deadline timers.
	began := time.Now()
	dev := start()
	s := &stack{t: t, url: dev.HTTPURL(), applyLog: applyLog}
	created := make([]gateway.RunView, runs)
	halfApprove := func(i int) {
		ws := applyWS(i)
		if timesOut(i) {
			ws = deadlineWS
		}
		created[i] = s.createRun(ws, "t-alice", "add-only.json")
		s.decide(created[i], "approve", "t-bob", map[string]string{"comment": "first half"}, http.StatusOK)
	}
	each(0, runs-timeouts, halfApprove)
	each(runs-timeouts, runs, halfApprove)
	for i, run := range created {
		if run.Status != approval.StatusPendingApproval || len(run.Reasons) != 1 || run.Reasons[0].OpenedAt == nil {
			t.Fatalf("run %d at creation: %s with reasons %+v; want pending on one open reason", i, run.Status, run.Reasons)
		}
	}
	closing := time.Now()
	if err := dev.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	down := time.Now()
	opened := func(i int) time.Time { return *created[i].Reasons[0].OpenedAt }
	// firstAfterClose: the run's first reminder was due after the close,
	// so any reminder of it comes from a timer that fired in the second life.
	firstAfterClose := func(i int) bool { return opened(i).Add(interval(i)).After(down) }
	strict := 0
	for i := range runs {
		if firstAfterClose(i) {
			strict++
		} else if timesOut(i) {
			t.Fatalf("run %d, to time out, had its first reminder due %v before the close; see the figures above", i, down.Sub(opened(i).Add(interval(i))))
		}
	}

	// Second life, on the same SQLite files.
	dev = start()
	defer dev.Close()
	s.url = dev.HTTPURL()
	up := time.Now()
	t.Logf("first life %v (the close %v); back %v after the close; %d runs had their first reminder due after the close",
		down.Sub(began).Round(time.Millisecond), down.Sub(closing).Round(time.Millisecond), up.Sub(down).Round(time.Millisecond), strict)

	// Every run is reminded after the restart and keeps bob's approval,
	// before anyone decides anything more: proven first, with nothing else
	// competing for the cores.
	var mu sync.Mutex
	each(0, runs, func(i int) {
		if err := remindedAfterRestart(s, created[i], firstAfterClose(i), down, up, up.Add(interval(i)+40*time.Second)); err != nil {
			t.Errorf("run %d: %v", i, err)
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("every run reminded after the restart %v after it", time.Since(up).Round(time.Millisecond))

	// The second approval of the runs to apply, the runs of one workspace
	// one after another, the workspaces side by side.
	var wg sync.WaitGroup
	for k := range workspaces {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := k; i < runs-timeouts; i += workspaces {
				if err := approveAndApply(s, created[i]); err != nil {
					t.Errorf("run %d: %v", i, err)
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("190 runs applied %v after the restart", time.Since(up).Round(time.Millisecond))

	// The runs left alone reach their deadline, on the timer set in the
	// first life, and fail closed.
	each(runs-timeouts, runs, func(i int) {
		run := created[i]
		trail, err := trailUntil(s, run, approval.AuditTimedOut, opened(i).Add(deadline+30*time.Second))
		if err != nil {
			t.Errorf("run %d: %v", i, err)
			return
		}
		if at := trail[len(trail)-1].At; at.Before(opened(i).Add(deadline)) {
			t.Errorf("run %d timed out at %v, before its deadline %v", i, at, opened(i).Add(deadline))
		}
		if got := s.get(run); got.Status != approval.StatusTimedOut || got.Outcome != approval.OutcomeCancel || got.Apply != nil {
			t.Errorf("run %d at its deadline: %s with outcome %q and apply %+v; want timed_out, cancel, never applied", i, got.Status, got.Outcome, got.Apply)
		}
	})
	if t.Failed() {
		t.FailNow()
	}

	// Each approved run applied once; no timed-out run applied.
	lines := s.applied()
	perRun := appliesPerRun(lines)
	if len(lines) != runs-timeouts {
		t.Errorf("%d applies; want %d, one per approved run", len(lines), runs-timeouts)
	}
	for i, run := range created {
		want := 1
		if timesOut(i) {
			want = 0
		}
		if perRun[run.ID] != want {
			t.Errorf("run %d applied %d times; want %d", i, perRun[run.ID], want)
		}
	}

	// Nothing lost: every run is final, and the audit trail's run list
	// agrees with the run on its status and its last entry.
	trailed := trailListings(t, s, names)
	if len(trailed) != runs {
		t.Errorf("the trail lists %d runs; want %d", len(trailed), runs)
	}
	counts := map[approval.Status]int{}
	each(0, runs, func(i int) {
		run := created[i]
		want := listed{approval.StatusApplied, approval.AuditApplied}
		if timesOut(i) {
			want = listed{approval.StatusTimedOut, approval.AuditTimedOut}
		}
		got := s.get(run)
		mu.Lock()
		defer mu.Unlock()
		counts[got.Status]++
		if got.Status != want.Status || trailed[run.ID] != want {
			t.Errorf("run %d: %s, listed in the trail as %+v; want %+v", i, got.Status, trailed[run.ID], want)
		}
	})
	t.Logf("%d runs: %d applied, %d timed out, %d lines in the apply log; second life %v",
		runs, counts[approval.StatusApplied], counts[approval.StatusTimedOut], len(lines), time.Since(up).Round(time.Millisecond))
}

// remindedAfterRestart waits, until until, for a reminder of the run
// written after the restart at up, and checks the run kept bob's approval:
// its trail is the request, the reason's opening, bob's approval and
// reminders only, none from before the close at down where strict. It
// reports instead of failing, as it runs on goroutines.
func remindedAfterRestart(s *stack, run gateway.RunView, strict bool, down, up, until time.Time) error {
	for {
		trail, err := trailUntil(s, run, approval.AuditReminded, until)
		if err != nil {
			return err
		}
		head := []approval.AuditAction{approval.AuditRequested, approval.AuditReasonOpened, approval.AuditApproved}
		if got := actionsOf(trail); !slices.Equal(got[:min(len(head), len(got))], head) || trail[2].Actor.ID != "bob" {
			return fmt.Errorf("trail %v; want %v with bob's approval, then reminders", got, head)
		}
		for _, e := range trail[len(head):] {
			if e.Action != approval.AuditReminded {
				return fmt.Errorf("trail %v; want only reminders after bob's approval", actionsOf(trail))
			}
			if strict && !e.At.After(down) {
				return fmt.Errorf("reminded at %v, before the close at %v, though its first reminder was due after it", e.At, down)
			}
		}
		if !trail[len(trail)-1].At.After(up) {
			// A reminder of the first life: wait for one of the second.
			if time.Now().After(until) {
				return fmt.Errorf("trail %v: no reminder since the restart at %v", actionsOf(trail), up)
			}
			time.Sleep(200 * time.Millisecond)
			continue
		}
		got := s.get(run)
		if got.Status != approval.StatusPendingApproval || got.Reasons[0].Progress != "1/2" || got.Reasons[0].RemindersSent < len(trail)-len(head) ||
			len(got.Decisions) != 1 || got.Decisions[0].UserID != "bob" || got.Decisions[0].Comment != "first half" {
			return fmt.Errorf("after its reminder: %s at %s, %d reminders sent, decisions %+v; want pending at 1/2 with bob's approval",
				got.Status, got.Reasons[0].Progress, got.Reasons[0].RemindersSent, got.Decisions)
		}
		return nil
	}
}

// approveAndApply gives the run carol's approval and waits for its apply
// in the trail, where it follows the reminders.
func approveAndApply(s *stack, run gateway.RunView) error {
	r := s.call("POST", s.runPath(run)+"/approve", "t-carol", map[string]string{"comment": "second half"})
	if r.status != http.StatusOK {
		return fmt.Errorf("carol's approval: %d %s", r.status, r.body)
	}
	// Applied in the trail: the workspace's lock was given back before the
	// entry was written, so the workspace's next run is not queued.
	trail, err := trailUntil(s, run, approval.AuditApplied, time.Now().Add(30*time.Second))
	if err != nil {
		return err
	}
	tail := []approval.AuditAction{approval.AuditReminded, approval.AuditApproved, approval.AuditApplyStarted, approval.AuditApplied}
	if got := actionsOf(trail); len(got) < 7 || !slices.Equal(got[len(got)-len(tail):], tail) || trail[len(trail)-3].Actor.ID != "carol" {
		return fmt.Errorf("trail %v; want reminders, then carol's approval and the apply", got)
	}
	return nil
}

// appliesPerRun counts the apply log's lines per run (examples/apply.sh
// writes the run's id second).
func appliesPerRun(lines []string) map[string]int {
	perRun := map[string]int{}
	for _, line := range lines {
		if f := strings.Fields(line); len(f) >= 2 {
			perRun[f[1]]++
		}
	}
	return perRun
}

// listed is a run as the audit trail's run list shows it.
type listed struct {
	Status     approval.Status      `json:"status"`
	LastAction approval.AuditAction `json:"last_action"`
}

// trailListings reads the audit trail's run list of each workspace named,
// every page of it, by run id.
func trailListings(t *testing.T, s *stack, workspaces []string) map[string]listed {
	t.Helper()
	trailed := map[string]listed{}
	for _, ws := range workspaces {
		cursor := ""
		for {
			var page struct {
				Runs []struct {
					ID string `json:"id"`
					listed
				} `json:"runs"`
				NextCursor string `json:"next_cursor"`
			}
			s.call("GET", "/api/v1/workspaces/"+ws+"/runs?source=audit&limit=1000&cursor="+url.QueryEscape(cursor), "t-victor", nil).decode(t, &page)
			for _, r := range page.Runs {
				trailed[r.ID] = r.listed
			}
			if cursor = page.NextCursor; cursor == "" {
				break
			}
		}
	}
	return trailed
}
