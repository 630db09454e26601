package activities_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"

	"github.com/gatehouse-dev/gatehouse/activities"
	"github.com/gatehouse-dev/gatehouse/activities/audit"
	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/internal/smtptest"
)

// auditedEvent is a notice that carries an entry of the audit trail.
func auditedEvent() activities.Event {
	e := requestEvent(activities.EventDecided)
	e.Audit = []approval.AuditEvent{{
		ID: e.ID, At: time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC), Action: approval.AuditApproved,
		Actor:     approval.AuditActor{ID: "bob", Channel: approval.ChannelSlack},
		Workspace: e.Workspace, RunID: e.RunID, StatusBefore: approval.StatusPendingApproval, StatusAfter: approval.StatusPendingApproval,
		Plan: approval.PlanSummary{SHA256: "ab12"},
	}}
	return e
}

// TestNotifyWritesTheAuditEntryOnceAcrossRetries: the entry is stored before
// the notifiers run; a retry after a failed webhook (with the attempt's
// heartbeat, or without it, as after a worker crash) stores no second row.
func TestNotifyWritesTheAuditEntryOnceAcrossRetries(t *testing.T) {
	f := newNotifyFixture(t, "      webhook: { url: http://127.0.0.1:1/hook, secret: s }\n", 0)
	store := openTrail(t)
	f.acts.Audit = store
	var suite testsuite.WorkflowTestSuite
	var last any
	first := suite.NewTestActivityEnvironment()
	first.RegisterActivity(f.acts)
	first.SetOnActivityHeartbeatListener(func(_ *activity.Info, details converter.EncodedValues) {
		var m map[string]any
		if err := details.Get(&m); err == nil {
			last = m
		}
	})
	if _, err := first.ExecuteActivity(f.acts.Notify, auditedEvent()); err == nil {
		t.Fatal("first attempt succeeded; want the webhook's failure")
	}
	if m, _ := last.(map[string]any); m == nil || m["audited"] != true {
		t.Fatalf("heartbeat %v; want the entry recorded as audited", last)
	}
	retry := suite.NewTestActivityEnvironment()
	retry.RegisterActivity(f.acts)
	retry.SetHeartbeatDetails(last)
	if _, err := retry.ExecuteActivity(f.acts.Notify, auditedEvent()); err == nil {
		t.Fatal("retry succeeded; the webhook still fails")
	}
	crashed := suite.NewTestActivityEnvironment() // its heartbeat lost with its worker
	crashed.RegisterActivity(f.acts)
	if _, err := crashed.ExecuteActivity(f.acts.Notify, auditedEvent()); err == nil {
		t.Fatal("third attempt succeeded; the webhook still fails")
	}
	page, err := store.Query(context.Background(), audit.Filter{Workspaces: []string{"prod-network"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 1 || page.Events[0].ID != "run-1/1" || page.Events[0].Actor.Channel != approval.ChannelSlack {
		t.Fatalf("trail %+v; want the one entry", page.Events)
	}
}

// TestNotifyFailsWhenTheTrailCannotBeWritten: a notice whose entry cannot be
// stored is retried, not delivered without it.
func TestNotifyFailsWhenTheTrailCannotBeWritten(t *testing.T) {
	f := newNotifyFixture(t, "      webhook: { url: http://127.0.0.1:1/hook, secret: s }\n", 0)
	store, err := audit.Open(context.Background(), audit.DriverSQLite, filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	store.Close() // closed: every write fails
	f.acts.Audit = store
	if _, err := notify(t, f.acts, auditedEvent()); err == nil {
		t.Fatal("notice delivered without its audit entry")
	}
}

// TestRecordOnlyLeavesTheChannelsToNotifyFrom: the start's local attempt
// (RecordOnly) stores the trail and logs, posts to no channel, and hands
// the channels to NotifyFrom, which delivers them without a second entry.
// Run twice, as when its workflow task is retried, it still stores one.
// In a workspace without channels nothing is left over.
func TestRecordOnlyLeavesTheChannelsToNotifyFrom(t *testing.T) {
	sink, port := smtptest.NewServer(t)
	f := newNotifyFixture(t, "      slack: { channel: C0PRODNET }\n      email: { mode: always }\n", port)
	store := openTrail(t)
	f.acts.Audit = store
	var suite testsuite.WorkflowTestSuite
	e := auditedEvent()
	e.Kind = activities.EventApprovalRequested
	var out activities.NotifyOutcome
	for range 2 {
		env := suite.NewTestActivityEnvironment()
		env.RegisterActivity(f.acts)
		v, err := env.ExecuteActivity(f.acts.NotifyLocally, activities.LocalNotice{Event: e, RecordOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := v.Get(&out); err != nil {
			t.Fatal(err)
		}
	}
	if p := out.Unfinished; p == nil || out.Error != "" || !p.Audited || !p.Logged || p.SlackDone || len(p.Emailed) != 0 {
		t.Fatalf("outcome %+v; want recorded, the channels left over", out)
	}
	if n := len(f.slack.called("chat.postMessage")); n != 0 || len(sink.Received()) != 0 {
		t.Fatalf("the record posted %d Slack messages and %d emails; want none", n, len(sink.Received()))
	}
	from := suite.NewTestActivityEnvironment()
	from.RegisterActivity(f.acts)
	if _, err := from.ExecuteActivity(f.acts.NotifyFrom, activities.NotifyInput{Event: e, From: *out.Unfinished}); err != nil {
		t.Fatal(err)
	}
	if n := len(f.slack.called("chat.postMessage")); n != 1 || len(sink.Received()) != 2 {
		t.Errorf("NotifyFrom posted %d Slack messages and %d emails; want the request, and bob and carol emailed", n, len(sink.Received()))
	}
	page, err := store.Query(context.Background(), audit.Filter{Workspaces: []string{"prod-network"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 1 {
		t.Errorf("trail %+v; want the one entry", page.Events)
	}

	bare := newNotifyFixture(t, "", 0)
	bare.acts.Config.Workspaces[0].Notify = nil
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(bare.acts)
	v, err := env.ExecuteActivity(bare.acts.NotifyLocally, activities.LocalNotice{Event: e, RecordOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var done activities.NotifyOutcome
	if err := v.Get(&done); err != nil || done.Unfinished != nil {
		t.Errorf("outcome %+v, %v in a workspace without channels; want finished", done, err)
	}
}

// openTrail is an audit trail in a SQLite file of the test's, closed when
// the test ends.
func openTrail(t *testing.T) *audit.Store {
	t.Helper()
	store, err := audit.Open(context.Background(), audit.DriverSQLite, filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}
