package bench

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"
)

// waitingRSS starts n runs of each side, bare first, and leaves them
// waiting; it returns each side's growth of resident memory per waiting
// run. Memory is read after a GC that also returns freed pages to the OS,
// so garbage does not count; the runs stay in Temporal's caches and the
// workers' sticky caches, as waiting runs do in production.
func waitingRSS(ctx context.Context, sides []side, n, conc int, settle time.Duration) (map[string]float64, error) {
	out := map[string]float64{}
	read := func() (int64, error) {
		time.Sleep(settle) // let the servers' own writes after the starts land
		debug.FreeOSMemory()
		return rssBytes()
	}
	before, err := read()
	if err != nil {
		return nil, err
	}
	for _, s := range sides {
		err := forEach(ctx, n, conc, func(ctx context.Context, i int) error {
			_, err := s.start(ctx, i)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("%s: start %d waiting runs: %w", s.name(), n, err)
		}
		after, err := read()
		if err != nil {
			return nil, err
		}
		out[s.name()] = float64(after-before) / float64(n)
		before = after
	}
	return out, nil
}
