package activities_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/activities"
)

var testSHA = strings.Repeat("ab", 32)

func newClaimStore(t *testing.T) (*activities.ClaimStore, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "claims")
	s, err := activities.NewClaimStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s, dir
}

// TestClaimHasOneWinner: of attempts racing for the same run and plan —
// two workers picking up a reset run at once — exactly one may apply.
func TestClaimHasOneWinner(t *testing.T) {
	s, _ := newClaimStore(t)
	const racers = 32
	var wg sync.WaitGroup
	errs := make([]error, racers)
	for i := range racers {
		wg.Go(func() {
			errs[i] = s.Claim(activities.Claim{RunID: "run-race", PlanSHA256: testSHA, Attempt: int32(i + 1), ClaimedAt: time.Now()})
		})
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		var claimed *activities.ClaimedError
		switch {
		case err == nil:
			won++
		case !errors.As(err, &claimed):
			t.Errorf("claim: %v; want a win or a *ClaimedError", err)
		}
	}
	if won != 1 {
		t.Errorf("%d claims won; want 1", won)
	}
}

func TestClaimRefusesUnsafeNames(t *testing.T) {
	s, dir := newClaimStore(t)
	for _, c := range []activities.Claim{
		{RunID: "../escape", PlanSHA256: testSHA},
		{RunID: "a/b", PlanSHA256: testSHA},
		{RunID: "", PlanSHA256: testSHA},
		{RunID: "run.1", PlanSHA256: testSHA},
		{RunID: "run-1", PlanSHA256: "../../etc/passwd"},
		{RunID: "run-1", PlanSHA256: strings.ToUpper(testSHA)},
	} {
		if err := s.Claim(c); err == nil || !strings.Contains(err.Error(), "malformed") {
			t.Errorf("claim %q/%q: %v; want refused as malformed", c.RunID, c.PlanSHA256, err)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 || exists(filepath.Join(dir, "..", "escape."+testSHA+".json")) {
		t.Errorf("files written for refused claims: %v", entries)
	}
}

func TestClaimFinishRecordsTheOutcome(t *testing.T) {
	s, dir := newClaimStore(t)
	first := activities.Claim{RunID: "run-f", PlanSHA256: testSHA, WorkflowRunID: "wf-1", Attempt: 1, Worker: "7@h@q", Host: "h", PID: 7, ClaimedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	if err := s.Claim(first); err != nil {
		t.Fatal(err)
	}
	err := s.Claim(activities.Claim{RunID: "run-f", PlanSHA256: testSHA})
	if err == nil || !strings.Contains(err.Error(), "recorded no outcome") || !strings.Contains(err.Error(), "7@h@q") {
		t.Errorf("second claim before the outcome: %v", err)
	}
	if err := s.Finish("run-f", testSHA, activities.ClaimOutcome{Executed: true, ExitCode: 2, Error: "boom", FinishedAt: first.ClaimedAt.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	err = s.Claim(activities.Claim{RunID: "run-f", PlanSHA256: testSHA})
	for _, want := range []string{"2026-01-02T03:04:05Z", "attempt 1", "workflow run wf-1", "7@h@q", "finished at 2026-01-02T03:05:05Z with exit code 2", "boom"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("second claim after the outcome: %v; want it to say %q", err, want)
		}
	}
	got, err := s.Get("run-f", testSHA)
	if err != nil || got.Outcome == nil || got.Outcome.ExitCode != 2 || got.Worker != "7@h@q" {
		t.Errorf("stored claim %+v, %v", got, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("claims dir holds %d files; want the claim alone (no temporary left)", len(entries))
	}
}

// TestClaimUnreadableStillBlocks: a claim torn by a crash while it was
// written is still a claim.
func TestClaimUnreadableStillBlocks(t *testing.T) {
	s, dir := newClaimStore(t)
	if err := os.WriteFile(filepath.Join(dir, "run-t."+testSHA+".json"), []byte(`{"run_id": "run-t", "pla`), 0o600); err != nil {
		t.Fatal(err)
	}
	var claimed *activities.ClaimedError
	if err := s.Claim(activities.Claim{RunID: "run-t", PlanSHA256: testSHA}); !errors.As(err, &claimed) || !strings.Contains(err.Error(), "run-t") {
		t.Errorf("claim over a torn one: %v; want a *ClaimedError", err)
	}
}

func TestClaimWaitWaitsForOpenClaims(t *testing.T) {
	s, _ := newClaimStore(t)
	if err := s.Claim(activities.Claim{RunID: "run-w", PlanSHA256: testSHA}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if s.Wait(ctx) {
		t.Error("Wait returned with a claim open")
	}
	go func() {
		time.Sleep(100 * time.Millisecond)
		s.Finish("run-w", testSHA, activities.ClaimOutcome{}) //nolint:errcheck // checked by Wait's answer
	}()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	if !s.Wait(ctx2) {
		t.Error("Wait did not return once the claim was finished")
	}
}
