package bench

import (
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var out []time.Duration
		for _, x := range v {
			out = append(out, time.Duration(x)*time.Millisecond)
		}
		return out
	}
	samples := ms(9, 1, 8, 2, 7, 3, 6, 4, 5, 10) // unsorted on purpose
	for _, c := range []struct {
		p    float64
		want int
	}{{50, 5}, {90, 9}, {99, 10}, {100, 10}, {10, 1}, {1, 1}} {
		if got := percentile(samples, c.p); got != time.Duration(c.want)*time.Millisecond {
			t.Errorf("p%v = %v; want %dms", c.p, got, c.want)
		}
	}
	if samples[0] != 9*time.Millisecond {
		t.Error("percentile sorted its argument in place")
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("p50 of nothing = %v; want 0", got)
	}
	if got := percentile(ms(42), 99); got != 42*time.Millisecond {
		t.Errorf("p99 of one sample = %v; want it", got)
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v; want %v", c.in, got, c.want)
		}
	}
}

// TestRatio: every ratio reads as Gatehouse's cost in multiples of bare's,
// whichever way its figure goes.
func TestRatio(t *testing.T) {
	if got := ratio(10, 30, false); got != 3 {
		t.Errorf("latency 10 vs 30: %v; want 3 (three times as slow)", got)
	}
	if got := ratio(200, 50, true); got != 4 {
		t.Errorf("rate 200/s vs 50/s: %v; want 4 (four times as slow)", got)
	}
	if got := ratio(0, 5, false); got != 0 {
		t.Errorf("bare 0: %v; want 0 (undefined)", got)
	}
	if got := ratio(5, 0, true); got != 0 {
		t.Errorf("gatehouse rate 0: %v; want 0 (undefined)", got)
	}
}

func TestMedianFigures(t *testing.T) {
	rep := func(b, g float64) []Figure { return []Figure{figure("decisions", "decisions/s", true, b, g)} }
	got := medianFigures([][]Figure{rep(100, 10), rep(300, 30), rep(200, 50)})
	if len(got) != 1 || got[0].Bare != 200 || got[0].Gatehouse != 30 {
		t.Fatalf("medians %+v; want bare 200, gatehouse 30", got)
	}
	if want := 200.0 / 30; got[0].Ratio != want {
		t.Errorf("ratio %v; want that of the medians, %v", got[0].Ratio, want)
	}
}

func TestWriteTable(t *testing.T) {
	var b strings.Builder
	err := writeTable(&b, []Figure{
		figure("start→waiting", "runs/s", true, 113, 65.3),
		figure("CPU per run", "ms", false, 2.5, 10),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `figure         unit    bare  gatehouse  cost ×bare
start→waiting  runs/s   113       65.3        1.73
CPU per run    ms      2.50       10.0        4.00
cost ×bare: gatehouse/bare for costs, bare/gatehouse for rates; 1.00 = as fast as bare, 2.00 = twice as slow.
`
	if b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestNumber(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 1234.5: "1234", 42.06: "42.1", 3.14159: "3.14", -0.5: "-0.50"} {
		if got := number(v); got != want {
			t.Errorf("number(%v) = %q; want %q", v, got, want)
		}
	}
}

// TestSummarise: applied is the first workflow task completed after the
// apply activity's completion, not after another activity's.
func TestSummarise(t *testing.T) {
	at := func(s int) *timestamppb.Timestamp { return timestamppb.New(time.Unix(int64(s), 0)) }
	ev := func(id int64, typ enumspb.EventType, s int) *historypb.HistoryEvent {
		return &historypb.HistoryEvent{EventId: id, EventType: typ, EventTime: at(s)}
	}
	scheduled := func(id int64, name string) *historypb.HistoryEvent {
		e := ev(id, enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, int(id))
		e.Attributes = &historypb.HistoryEvent_ActivityTaskScheduledEventAttributes{ActivityTaskScheduledEventAttributes: &historypb.ActivityTaskScheduledEventAttributes{
			ActivityType: &commonpb.ActivityType{Name: name},
		}}
		return e
	}
	completed := func(id, sched int64) *historypb.HistoryEvent {
		e := ev(id, enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, int(id))
		e.Attributes = &historypb.HistoryEvent_ActivityTaskCompletedEventAttributes{ActivityTaskCompletedEventAttributes: &historypb.ActivityTaskCompletedEventAttributes{ScheduledEventId: sched}}
		return e
	}
	events := []*historypb.HistoryEvent{
		scheduled(1, "Notify"),
		completed(2, 1),
		ev(3, enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, 3),
		scheduled(4, "Apply"),
		completed(5, 4),
		ev(6, enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, 6),
		ev(7, enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, 7),
	}
	st := summarise(events, "Apply")
	if st.Events != 7 || st.Bytes <= 0 {
		t.Errorf("%d events, %d bytes; want 7 and some", st.Events, st.Bytes)
	}
	if n := st.Types[enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED.String()]; n != 3 {
		t.Errorf("%d workflow tasks completed counted; want 3", n)
	}
	if st.Types["activity Notify"] != 1 || st.Types["activity Apply"] != 1 {
		t.Errorf("activities counted %v; want Notify and Apply once each", st.Types)
	}
	if !st.AppliedAt.Equal(time.Unix(6, 0)) {
		t.Errorf("applied at %v; want the task completed at 6s", st.AppliedAt)
	}
	if st := summarise(events[:3], "Apply"); !st.AppliedAt.IsZero() {
		t.Errorf("no apply: applied at %v; want zero", st.AppliedAt)
	}
}
