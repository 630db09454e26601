package activities_test

import (
	"context"
	"encoding/json"
	"errors"
	"html"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/gatehouse-dev/gatehouse/activities"
	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/internal/smtptest"
)

func TestEmailFallbackWhenSlackStaysDown(t *testing.T) {
	sink, port := smtptest.NewServer(t)
	f := newNotifyFixture(t, "      slack: { channel: C0PRODNET }\n      email: { mode: fallback }\n", port)
	f.slack.answer = func(_ string, w http.ResponseWriter) bool { w.WriteHeader(http.StatusServiceUnavailable); return true }

	// Within the minute the Slack error comes back, for Temporal to retry,
	// and nobody is emailed yet.
	_, err := notify(t, f.acts, requestEvent(activities.EventApprovalRequested))
	var appErr *temporal.ApplicationError
	if err == nil || (errors.As(err, &appErr) && appErr.NonRetryable()) {
		t.Fatalf("first minute: %v; want a retryable Slack error", err)
	}
	if got := sink.Received(); len(got) != 0 {
		t.Fatalf("emailed %d within the first minute; want none", len(got))
	}

	// Past it (the fallback delay shortened for the test), the request goes
	// by email and the Slack failure is reported, not raised.
	f.acts.EmailFallbackAfter = time.Nanosecond
	res, err := notify(t, f.acts, requestEvent(activities.EventApprovalRequested))
	if err != nil {
		t.Fatalf("after the minute: %v; want the notice delivered by email", err)
	}
	if len(res.Failures) != 1 || !strings.HasPrefix(res.Failures[0], "slack: ") || !strings.Contains(res.Failures[0], "503") {
		t.Errorf("failures %v; want the Slack error", res.Failures)
	}
	got := sink.Received()
	if len(got) != 2 {
		t.Fatalf("received %d emails; want one each for bob and carol", len(got))
	}
	for i, want := range []string{"bob@example.com", "carol@example.com"} {
		m := got[i]
		if m.From != "gatehouse@example.com" || len(m.To) != 1 || m.To[0] != want {
			t.Errorf("email %d from %s to %v; want gatehouse@example.com to %s alone", i, m.From, m.To, want)
		}
		if m.Subject != "[Gatehouse] Approval needed: prod-network (run run-1)" {
			t.Errorf("subject %q", m.Subject)
		}
		checkFacts(t, "text", m.Text, "rotate the <!channel> routes")
		checkFacts(t, "html", html.UnescapeString(m.HTML), "rotate the <!channel> routes")
		if !strings.Contains(m.HTML, "rotate the &lt;!channel&gt; routes") {
			t.Errorf("html does not escape the run's message:\n%s", m.HTML)
		}
		if !strings.Contains(m.HTML, `<a href="https://gatehouse.example.com/ui/workspaces/prod-network/runs/run-1">`) {
			t.Errorf("html has no link to the run:\n%s", m.HTML)
		}
	}
}

// checkFacts checks an email part says what the Slack message says.
func checkFacts(t *testing.T, part, body string, message string) {
	t.Helper()
	for _, want := range []string{
		"This run needs your approval", "prod-network", "production", "alice (submitted by ci-bot)", message,
		"+2 to add, ~0 to change, -12 to destroy (1 replaced)", "aws_subnet.r", "aws_route.d[9]", "… and 2 more",
		"+512.00 USD/month", "routes without tags", "destroys-need-two", "1/2", "waiting for carol",
		"bob approved: “lgtm”", "Sun 22 Nov 2026 15:00 UTC",
		"https://gatehouse.example.com/ui/workspaces/prod-network/runs/run-1",
		"https://temporal.example.com/namespaces/default/workflows/run-1",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("%s part lacks %q:\n%s", part, want, body)
		}
	}
}

func TestEmailAlwaysSendsBesideSlack(t *testing.T) {
	sink, port := smtptest.NewServer(t)
	f := newNotifyFixture(t, "      slack: { channel: C0PRODNET }\n      email: { mode: always }\n", port)
	e := requestEvent(activities.EventReminder)
	e.Recipients = []approval.UserID{"carol"}
	res, err := notify(t, f.acts, e)
	if err != nil {
		t.Fatalf("Notify: %v", err)
	}
	if len(res.Failures) != 0 {
		t.Errorf("failures %v; want none", res.Failures)
	}
	got := sink.Received()
	if len(got) != 1 || got[0].To[0] != "carol@example.com" || !strings.HasPrefix(got[0].Subject, "[Gatehouse] Reminder: ") {
		t.Fatalf("received %+v; want carol's reminder", got)
	}
	if !strings.Contains(got[0].Text, "Reminder: this run still needs your approval") {
		t.Errorf("text:\n%s", got[0].Text)
	}
}

func TestEmailWithoutSlackAndDecidedNoticesSendNothing(t *testing.T) {
	sink, port := smtptest.NewServer(t)
	f := newNotifyFixture(t, "      email: { mode: fallback }\n", port)
	if _, err := notify(t, f.acts, requestEvent(activities.EventApprovalRequested)); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	if got := sink.Received(); len(got) != 2 {
		t.Fatalf("received %d emails; want the request for bob and carol where Slack is not set up", len(got))
	}
	if _, err := notify(t, f.acts, requestEvent(activities.EventDecided)); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	if got := sink.Received(); len(got) != 2 || len(f.slack.called("chat.postMessage")) != 0 {
		t.Errorf("a decision notice sent %d emails and %d posts; want none", len(got)-2, len(f.slack.called("chat.postMessage")))
	}
}

func TestEmailFailingSMTPIsRetryable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // nothing listens there now
	f := newNotifyFixture(t, "      email: { mode: always }\n", port)
	_, err = notify(t, f.acts, requestEvent(activities.EventApprovalRequested))
	var appErr *temporal.ApplicationError
	if err == nil || (errors.As(err, &appErr) && appErr.NonRetryable()) {
		t.Fatalf("error %v; want a retryable SMTP error", err)
	}
}

// A retry after a failed webhook posts no second Slack message and emails
// nobody twice: the first attempt's heartbeat says what went out.
func TestNotifyRetryDoesNotRepeatWhatWentOut(t *testing.T) {
	sink, port := smtptest.NewServer(t)
	f := newNotifyFixture(t, "      slack: { channel: C0PRODNET }\n      email: { mode: always }\n      webhook: { url: http://127.0.0.1:1/hook, secret: s }\n", port)
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(f.acts)
	var last any
	env.SetOnActivityHeartbeatListener(func(_ *activity.Info, details converter.EncodedValues) {
		var m map[string]any
		if err := details.Get(&m); err == nil {
			last = m
		}
	})
	if _, err := env.ExecuteActivity(f.acts.Notify, requestEvent(activities.EventApprovalRequested)); err == nil {
		t.Fatal("first attempt succeeded; want the webhook's failure")
	}
	retry := suite.NewTestActivityEnvironment()
	retry.RegisterActivity(f.acts)
	retry.SetHeartbeatDetails(last)
	if _, err := retry.ExecuteActivity(f.acts.Notify, requestEvent(activities.EventApprovalRequested)); err == nil {
		t.Fatal("retry succeeded; the webhook still fails")
	}
	if n := len(f.slack.called("chat.postMessage")); n != 1 {
		t.Errorf("%d Slack posts over two attempts; want one", n)
	}
	if n := len(sink.Received()); n != 2 {
		t.Errorf("%d emails over two attempts; want one each for bob and carol", n)
	}
}

// A notice's local first attempt that fails at the webhook says how far it
// got, and the activity that takes over starts there: still one Slack post
// and one email each. The attempt renders its messages from the run it was
// given; only NotifyFrom, outside the run's workflow task, reads the run.
func TestNotifyFromGoesOnWhereTheLocalAttemptStopped(t *testing.T) {
	sink, port := smtptest.NewServer(t)
	f := newNotifyFixture(t, "      slack: { channel: C0PRODNET }\n      email: { mode: always }\n      webhook: { url: http://127.0.0.1:1/hook, secret: s }\n", port)
	reads := &countingRuns{run: f.run}
	f.acts.Runs = reads
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(f.acts)
	e := requestEvent(activities.EventApprovalRequested)
	run, err := json.Marshal(f.run)
	if err != nil {
		t.Fatal(err)
	}
	v, err := env.ExecuteActivity(f.acts.NotifyLocally, activities.LocalNotice{Event: e, Run: run})
	if err != nil {
		t.Fatalf("local attempt failed as an activity: %v; want its failure in the answer", err)
	}
	var out activities.NotifyOutcome
	if err := v.Get(&out); err != nil {
		t.Fatal(err)
	}
	if out.Unfinished == nil || out.Final || !strings.Contains(out.Error, "webhook") {
		t.Fatalf("outcome %+v; want unfinished at the webhook, retryable", out)
	}
	if p := out.Unfinished; !p.SlackDone || len(p.Posted) != 1 || len(p.Emailed) != 2 || p.Hooked || !p.Logged {
		t.Fatalf("progress %+v; want Slack posted, both emailed and logged, the webhook not", p)
	}
	if n := reads.count(); n != 0 {
		t.Errorf("the local attempt read the run %d times; want none (it was given the run)", n)
	}
	from := suite.NewTestActivityEnvironment()
	from.RegisterActivity(f.acts)
	if _, err := from.ExecuteActivity(f.acts.NotifyFrom, activities.NotifyInput{Event: e, From: *out.Unfinished}); err == nil {
		t.Fatal("NotifyFrom succeeded; the webhook still fails")
	}
	if n := len(f.slack.called("chat.postMessage")); n != 1 {
		t.Errorf("%d Slack posts over both attempts; want one", n)
	}
	if n := len(sink.Received()); n != 2 {
		t.Errorf("%d emails over both attempts; want one each for bob and carol", n)
	}
}

// countingRuns is fixedRuns that counts its reads.
type countingRuns struct {
	run   approval.Run
	mu    sync.Mutex
	reads int
}

func (c *countingRuns) ReadRun(ctx context.Context, id string) (approval.Run, error) {
	c.mu.Lock()
	c.reads++
	c.mu.Unlock()
	return fixedRuns{run: c.run}.ReadRun(ctx, id)
}

func (c *countingRuns) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reads
}
