package activities

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestApplyLockIsHeldByOneRun(t *testing.T) {
	s, err := NewLockStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, now := context.Background(), time.Now()
	alive := func(context.Context, string) bool { return true }
	if ok, _, err := s.acquire(ctx, "ws", "run-a", now, alive); !ok || err != nil {
		t.Fatalf("first acquire: %v %v; want granted", ok, err)
	}
	if ok, holder, _ := s.acquire(ctx, "ws", "run-a", now, alive); !ok || holder != "run-a" {
		t.Errorf("the holder asking again: %v %s; want granted", ok, holder)
	}
	if ok, holder, _ := s.acquire(ctx, "ws", "run-b", now, alive); ok || holder != "run-a" {
		t.Errorf("second run: %v, holder %s; want refused, held by run-a", ok, holder)
	}
	if ok, _, _ := s.acquire(ctx, "other", "run-b", now, alive); !ok {
		t.Error("another workspace's lock: want granted")
	}
	if err := s.release("ws", "run-b"); err != nil {
		t.Fatal(err)
	}
	if ok, _, _ := s.acquire(ctx, "ws", "run-b", now, alive); ok {
		t.Error("a release by a run that does not hold the lock freed it")
	}
	if err := s.release("ws", "run-a"); err != nil {
		t.Fatal(err)
	}
	if ok, _, _ := s.acquire(ctx, "ws", "run-b", now, alive); !ok {
		t.Error("after the holder released: want granted")
	}
}

func TestApplyLockOfAClosedRunIsTakenOver(t *testing.T) {
	s, _ := NewLockStore(t.TempDir())
	ctx, now := context.Background(), time.Now()
	if ok, _, _ := s.acquire(ctx, "ws", "run-a", now, nil); !ok {
		t.Fatal("first acquire refused")
	}
	closed := func(_ context.Context, id string) bool { return id != "run-a" }
	if ok, _, _ := s.acquire(ctx, "ws", "run-b", now, closed); !ok {
		t.Error("the holder's workflow closed: want the lock taken over")
	}
}

func TestApplyLockRaceHasOneWinner(t *testing.T) {
	s, _ := NewLockStore(t.TempDir())
	ctx, now := context.Background(), time.Now()
	// A stale holder, and 16 runs taking it over at once.
	s.acquire(ctx, "ws", "run-stale", now, nil)
	closed := func(_ context.Context, id string) bool { return id != "run-stale" }
	var mu sync.Mutex
	var wg sync.WaitGroup
	winners := 0
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, _, err := s.acquire(ctx, "ws", "run-"+string(rune('a'+i)), now, closed)
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				winners++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if winners != 1 {
		t.Errorf("%d runs got the lock; want 1", winners)
	}
}

func TestApplyLockRefusesUnsafeNamesAndKeepsUnreadableLocks(t *testing.T) {
	dir := t.TempDir()
	s, _ := NewLockStore(dir)
	ctx, now := context.Background(), time.Now()
	alive := func(context.Context, string) bool { return false }
	for _, tc := range [][2]string{{"../ws", "run-a"}, {"ws", "../run"}, {"", "run-a"}} {
		if _, _, err := s.acquire(ctx, tc[0], tc[1], now, alive); err == nil {
			t.Errorf("acquire(%q, %q): want an error", tc[0], tc[1])
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "ws.lock"), []byte("{torn"), 0o600); err != nil {
		t.Fatal(err)
	}
	if ok, holder, _ := s.acquire(ctx, "ws", "run-a", now, alive); ok {
		t.Errorf("an unreadable lock was taken (holder %q); want it kept: nobody can say its holder is done", holder)
	}
}
