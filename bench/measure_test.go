package bench

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
)

func TestForEach(t *testing.T) {
	var calls [50]atomic.Int32
	if err := forEach(context.Background(), len(calls), 4, func(_ context.Context, i int) error {
		calls[i].Add(1)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for i := range calls {
		if n := calls[i].Load(); n != 1 {
			t.Errorf("index %d called %d times; want once", i, n)
		}
	}

	boom := errors.New("boom")
	var after atomic.Int32
	err := forEach(context.Background(), 100, 1, func(_ context.Context, i int) error {
		if i == 3 {
			return boom
		}
		if i > 3 {
			after.Add(1)
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Errorf("error %v; want %v", err, boom)
	}
	if n := after.Load(); n != 0 {
		t.Errorf("%d calls ran after the error; want none", n)
	}
}

func TestCPUTimeGrows(t *testing.T) {
	a, err := cpuTime()
	if err != nil {
		t.Fatal(err)
	}
	x := 0
	for i := range 50_000_000 {
		x += i % 7
	}
	b, err := cpuTime()
	if err != nil {
		t.Fatal(err)
	}
	if b <= a || x == 0 {
		t.Errorf("CPU time %v then %v; want it to grow", a, b)
	}
}
