package tests

import (
	"context"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
)

// TestNewRunRecordsNoVersionMarker: a run the gateway starts names its
// workflow version in its input, so its history holds no version marker
// and no TemporalChangeVersion upsert (before, every run had both: two
// events and a visibility write for a choice the input can carry), and it
// still goes all the way to applied on the real server.
func TestNewRunRecordsNoVersionMarker(t *testing.T) {
	s := newStack(t, stackOptions{})
	run := s.twoApprovalRun()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.client.GetWorkflow(ctx, run.ID, "").Get(ctx, nil); err != nil {
		t.Fatalf("run %s did not close: %v", run.ID, err)
	}
	iter := s.temporal.GetDefaultClient().GetWorkflowHistory(ctx, run.ID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	markers := 0
	for iter.HasNext() {
		e, err := iter.Next()
		if err != nil {
			t.Fatal(err)
		}
		if m := e.GetMarkerRecordedEventAttributes(); m != nil {
			markers++
			if m.GetMarkerName() == "Version" {
				t.Errorf("event %d is a version marker (%s)", e.EventId, m.GetDetails()["change-id"])
			}
		}
		if _, ok := e.GetUpsertWorkflowSearchAttributesEventAttributes().GetSearchAttributes().GetIndexedFields()["TemporalChangeVersion"]; ok {
			t.Errorf("event %d upserts TemporalChangeVersion", e.EventId)
		}
	}
	if markers == 0 {
		t.Error("the history has no marker at all; want the start's signature check and the local activities'")
	}
}
