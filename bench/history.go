package bench

import (
	"context"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/proto"
)

// historyStats is what a closed run left in Temporal.
type historyStats struct {
	Events int
	Bytes  int // sum of the events' encoded sizes
	// Types counts the events by type, and scheduled activities by name
	// ("activity Apply"): where a run's history, and so much of the
	// server's work, comes from.
	Types map[string]int
	// TypeBytes sums the events' encoded sizes by type: which events
	// carry the bytes.
	TypeBytes map[string]int
	// AppliedAt is when the workflow took in its apply activity's result:
	// the workflow task that completed after the activity did. From then
	// on a query says applied. Zero when the activity never completed.
	AppliedAt time.Time
}

// readHistory reads the run's whole history (the latest workflow run).
func readHistory(ctx context.Context, c client.Client, id, applyActivity string) (historyStats, error) {
	var events []*historypb.HistoryEvent
	it := c.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return historyStats{}, fmt.Errorf("history of %s: %w", id, err)
		}
		events = append(events, e)
	}
	return summarise(events, applyActivity), nil
}

// summarise counts and sizes the events and finds when the apply landed.
func summarise(events []*historypb.HistoryEvent, applyActivity string) historyStats {
	st := historyStats{Types: map[string]int{}, TypeBytes: map[string]int{}}
	scheduled := map[int64]bool{} // event IDs of the apply's schedules
	applied := false
	for _, e := range events {
		st.Events++
		size := proto.Size(e)
		st.Bytes += size
		st.Types[e.GetEventType().String()]++
		st.TypeBytes[e.GetEventType().String()] += size
		switch e.GetEventType() {
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			name := e.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName()
			st.Types["activity "+name]++ // which activities, beside how many
			if name == applyActivity {
				scheduled[e.GetEventId()] = true
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			if scheduled[e.GetActivityTaskCompletedEventAttributes().GetScheduledEventId()] {
				applied = true
			}
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
			if applied && st.AppliedAt.IsZero() {
				st.AppliedAt = e.GetEventTime().AsTime()
			}
		}
	}
	return st
}
