package bench

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"
	"unicode/utf8"
)

// Figure is one measured quantity on both sides. Ratio says how many times
// bare's cost Gatehouse's is, whatever the unit: gatehouse/bare for costs
// (latencies, CPU, history, memory) and bare/gatehouse for rates, so 1.0
// is as fast (as cheap) as bare and 2.0 is twice as slow (costly).
type Figure struct {
	Name      string  `json:"name"`
	Unit      string  `json:"unit"`
	Rate      bool    `json:"rate"` // higher is better; Ratio is bare/gatehouse
	Bare      float64 `json:"bare"`
	Gatehouse float64 `json:"gatehouse"`
	Ratio     float64 `json:"ratio"`
}

// ratio is Gatehouse's cost in multiples of bare's; 0 when undefined.
func ratio(bare, gatehouse float64, rate bool) float64 {
	num, den := gatehouse, bare
	if rate {
		num, den = bare, gatehouse
	}
	if den == 0 {
		return 0
	}
	return num / den
}

func figure(name, unit string, rate bool, bare, gatehouse float64) Figure {
	return Figure{Name: name, Unit: unit, Rate: rate, Bare: bare, Gatehouse: gatehouse, Ratio: ratio(bare, gatehouse, rate)}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func perSecond(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

func perRun(total float64, runs int) float64 {
	if runs == 0 {
		return 0
	}
	return total / float64(runs)
}

// figures are one repeat's results, in the table's order.
func figures(bare, gh *sample) []Figure {
	both := func(name, unit string, rate bool, f func(*sample) float64) Figure {
		return figure(name, unit, rate, f(bare), f(gh))
	}
	lat := func(name string, pick func(*sample) []time.Duration, p float64) Figure {
		return both(name, "ms", false, func(s *sample) float64 { return ms(percentile(pick(s), p)) })
	}
	return []Figure{
		both("start→waiting", "runs/s", true, func(s *sample) float64 { return perSecond(s.Runs, s.StartWall) }),
		lat("start latency p50", func(s *sample) []time.Duration { return s.StartLatency }, 50),
		lat("start latency p99", func(s *sample) []time.Duration { return s.StartLatency }, 99),
		both("decisions", "decisions/s", true, func(s *sample) float64 { return perSecond(s.Decisions, s.DecideWall) }),
		lat("approve latency p50", func(s *sample) []time.Duration { return s.ApproveLatency }, 50),
		lat("approve latency p99", func(s *sample) []time.Duration { return s.ApproveLatency }, 99),
		lat("last decision→applied p50", func(s *sample) []time.Duration { return s.ToApplied }, 50),
		lat("last decision→applied p99", func(s *sample) []time.Duration { return s.ToApplied }, 99),
		lat("last decision→closed p50", func(s *sample) []time.Duration { return s.ToClosed }, 50),
		lat("last decision→closed p99", func(s *sample) []time.Duration { return s.ToClosed }, 99),
		both("history events per run", "events", false, func(s *sample) float64 { return perRun(float64(s.Events), s.Runs) }),
		both("history bytes per run", "bytes", false, func(s *sample) float64 { return perRun(float64(s.Bytes), s.Runs) }),
		both("CPU per run", "ms", false, func(s *sample) float64 { return perRun(ms(s.CPU), s.Runs) }),
	}
}

// medianFigures is, figure by figure, the median over the repeats of each
// side's value; the ratio is that of the medians.
func medianFigures(repeats [][]Figure) []Figure {
	if len(repeats) == 0 {
		return nil
	}
	out := make([]Figure, len(repeats[0]))
	for i, f := range repeats[0] {
		var b, g []float64
		for _, r := range repeats {
			b, g = append(b, r[i].Bare), append(g, r[i].Gatehouse)
		}
		out[i] = figure(f.Name, f.Unit, f.Rate, median(b), median(g))
	}
	return out
}

// writeTable prints the figures aligned: names and units to the left,
// numbers to the right, and says which way the ratio goes.
func writeTable(w io.Writer, figs []Figure) error {
	rows := [][]string{{"figure", "unit", "bare", "gatehouse", "cost ×bare"}}
	for _, f := range figs {
		rows = append(rows, []string{f.Name, f.Unit, number(f.Bare), number(f.Gatehouse), number(f.Ratio)})
	}
	width := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, cell := range r {
			width[i] = max(width[i], utf8.RuneCountInString(cell))
		}
	}
	var b strings.Builder
	for _, r := range rows {
		for i, cell := range r {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(cell))
			if i > 0 {
				b.WriteString("  ")
			}
			if i < 2 {
				b.WriteString(cell + pad)
			} else {
				b.WriteString(pad + cell)
			}
		}
		b.WriteString("\n")
	}
	b.WriteString("cost ×bare: gatehouse/bare for costs, bare/gatehouse for rates; 1.00 = as fast as bare, 2.00 = twice as slow.\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}

// number prints a figure with about three significant digits.
func number(v float64) string {
	switch a := math.Abs(v); {
	case a == 0:
		return "0"
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}
