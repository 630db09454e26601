package audit

import (
	"math"
	"strings"
	"time"
)

// Page sizes.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// clampLimit is a page's size: the default for none, at most MaxLimit.
func clampLimit(n int) int {
	switch {
	case n <= 0:
		return DefaultLimit
	case n > MaxLimit:
		return MaxLimit
	}
	return n
}

// where builds a query's conditions with their arguments, in '?' style.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

// addIn adds "column IN (...)" over values; no values match no row.
func (w *where) addIn(column string, values []string) {
	if len(values) == 0 {
		w.conds = append(w.conds, "1 = 0")
		return
	}
	marks := strings.Repeat("?, ", len(values))
	w.conds = append(w.conds, column+" IN ("+marks[:len(marks)-2]+")")
	for _, v := range values {
		w.args = append(w.args, v)
	}
}

func (w *where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// unixNanos is t as the tables store it, clamped to what an int64 holds so
// that a bound far in the past or future still bounds.
func unixNanos(t time.Time) int64 {
	switch {
	case t.Unix() <= minUnixSeconds:
		return math.MinInt64
	case t.Unix() >= maxUnixSeconds:
		return math.MaxInt64
	}
	return t.UnixNano()
}
