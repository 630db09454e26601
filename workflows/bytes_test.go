package workflows_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/proto"

	"github.com/gatehouse-dev/gatehouse/activities"
	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/worker"
	"github.com/gatehouse-dev/gatehouse/workflows"
)

// countingConverter is the default data converter, counting the bytes of
// every payload it encodes: in the test environment that is everything a
// workflow run writes to history as a payload (its input, activity inputs
// and results, Update arguments and results, side effects, its
// continue-as-new input or result), except Update results, which the test
// environment does not encode (the test measures them itself). Search
// attributes are encoded apart and not counted.
type countingConverter struct {
	converter.DataConverter
	mu     sync.Mutex
	total  int
	byType map[string]int
}

func newCountingConverter() *countingConverter {
	return &countingConverter{DataConverter: converter.GetDefaultDataConverter(), byType: map[string]int{}}
}

func (c *countingConverter) add(v any, p *commonpb.Payload) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := proto.Size(p)
	c.total += n
	c.byType[fmt.Sprintf("%T", v)] += n
}

func (c *countingConverter) ToPayload(v any) (*commonpb.Payload, error) {
	p, err := c.DataConverter.ToPayload(v)
	if err == nil {
		c.add(v, p)
	}
	return p, err
}

func (c *countingConverter) ToPayloads(vs ...any) (*commonpb.Payloads, error) {
	ps, err := c.DataConverter.ToPayloads(vs...)
	if err == nil {
		for i, p := range ps.GetPayloads() {
			c.add(vs[i], p)
		}
	}
	return ps, err
}

// breakdown lists the counted bytes by Go type, largest first.
func (c *countingConverter) breakdown() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	types := make([]string, 0, len(c.byType))
	for k := range c.byType {
		types = append(types, k)
	}
	slices.SortFunc(types, func(a, b string) int { return c.byType[b] - c.byType[a] })
	var parts []string
	for _, k := range types {
		parts = append(parts, fmt.Sprintf("%s %d", k, c.byType[k]))
	}
	return strings.Join(parts, ", ")
}

// bigPlan is a plan of n resource changes with their digests: every
// hundredth an IAM policy update, the rest S3 objects created.
func bigPlan(n int) approval.Plan {
	changes := make([]approval.Resource, n)
	for i := range changes {
		r := approval.Resource{Address: fmt.Sprintf("aws_s3_object.asset[%d]", i), Type: "aws_s3_object",
			Provider: "registry.terraform.io/hashicorp/aws", Actions: []approval.Action{approval.ActionCreate}}
		if i%100 == 0 {
			r.Address, r.Type, r.Actions = fmt.Sprintf("aws_iam_role_policy.svc[%d]", i), "aws_iam_role_policy", []approval.Action{approval.ActionUpdate}
		}
		sum := sha256.Sum256([]byte(r.Address + "|" + string(r.Actions[0])))
		r.Digest = hex.EncodeToString(sum[:])
		changes[i] = r
	}
	sum := sha256.Sum256([]byte("plan of 50k"))
	return approval.Summarize(hex.EncodeToString(sum[:]), changes)
}

// TestFiftyThousandResourcesThirtyDaysBoundedBytes measures what a run for
// a 50,000-resource plan writes while it waits 30 days with hourly
// reminders, following every continue-as-new as Temporal would. The bounds:
// the start input under 16 KiB, each continue-as-new input under 32 KiB,
// all payloads of one workflow run (DefaultMaxWakeups wake-ups) under
// 1 MiB, each Update result under 200 bytes.
func TestFiftyThousandResourcesThirtyDaysBoundedBytes(t *testing.T) {
	const (
		maxInput    = 16 << 10
		maxCANInput = 32 << 10
		maxPerRun   = 1 << 20
		resources   = 50_000
	)
	plan := bigPlan(resources)
	d := draft{
		Workspace: approval.Workspace{
			Name: "prod-storage", Environment: "production", OnTimeout: approval.OutcomeReject,
			Timing: approval.Timing{Timeout: 30 * 24 * time.Hour, RemindEvery: time.Hour},
			Rules: []approval.Rule{
				{Name: "iam-needs-two", When: approval.Conditions{ResourceTypes: []string{"aws_iam_*"}},
					Approvers: approval.Approvers{Groups: []string{"platform"}}, MinApprovals: 2},
				destroysNeedTwo, // matches nothing: the plan destroys nothing
			},
		},
		RequestedBy: alice,
		Message:     "publish the asset catalogue",
		Plan:        plan,
		Directory:   people(),
	}
	start := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	in := d.input(t, testWorkflowID, start)
	if len(in.Reasons) != 1 || in.Reasons[0].ID != "rule:iam-needs-two" || in.Plan.ResourceCount != resources {
		t.Fatalf("evaluated reasons %+v for %d resources; want iam-needs-two only, for %d", in.Reasons, in.Plan.ResourceCount, resources)
	}
	inputBytes := payloadSize(t, in)
	if inputBytes >= maxInput {
		t.Errorf("start input is %d bytes; want under %d", inputBytes, maxInput)
	}

	// bob approves on day 1; a retry of his request (same Update ID) lands
	// on day 12, after hand-overs; alice asks for a renotify on day 20.
	type planned struct {
		at        time.Time
		name, id  string
		req       approval.Request
		done      bool
		err       error
		res       workflows.DecisionResult
		resultLen int
	}
	day := func(n int) time.Time { return start.Add(time.Duration(n)*24*time.Hour + 30*time.Minute) }
	pending := []*planned{
		{at: day(1), name: workflows.UpdateApprove, id: "bob-1", req: approval.Request{Actor: bob}},
		{at: day(12), name: workflows.UpdateApprove, id: "bob-1", req: approval.Request{Actor: bob}},
		{at: day(20), name: workflows.UpdateRenotify, id: "alice-n1", req: approval.Request{Actor: alice}},
	}

	var (
		segments, reminders, maxRunBytes, maxCAN int
		final                                    approval.Run
		now                                      = start
	)
	for {
		segments++
		if segments > 20 {
			t.Fatal("no end to continue-as-new")
		}
		env := newEnv()
		counter := newCountingConverter()
		env.SetDataConverter(counter)
		env.SetStartTime(now)
		if segments > 1 {
			env.SetContinuedExecutionRunID(fmt.Sprintf("run-%d", segments-1))
		}
		acts := &activities.Activities{}
		worker.Register(env, testRunner(), acts)
		// Notices are delivered beside the run: the mocks run at the same
		// time.
		var segReminders, applies atomic.Int64
		onNotify(env, acts, func(e activities.Event) (activities.NotifyResult, error) {
			if e.Kind == activities.EventReminder {
				segReminders.Add(1)
			}
			return activities.NotifyResult{}, nil
		})
		env.OnActivity(acts.Apply, mock.Anything, mock.Anything).Return(func(context.Context, activities.ApplyInput) (approval.ApplyResult, error) {
			applies.Add(1)
			return approval.ApplyResult{Executed: true}, nil
		})
		segStart := now
		// The test environment hands Update results to the callbacks
		// without encoding them: they are measured here.
		segResults := 0
		for _, p := range pending {
			if p.done || p.at.Before(segStart) {
				continue
			}
			p := p
			env.RegisterDelayedCallback(func() {
				update(t, env, p.name, p.id, p.req, &testsuite.TestUpdateCallback{
					OnAccept: func() {},
					OnReject: func(err error) { p.done, p.err = true, err },
					OnComplete: func(result any, err error) {
						p.done, p.err = true, err
						if err == nil {
							p.res = result.(workflows.DecisionResult)
							p.resultLen = payloadSize(t, p.res)
							segResults += p.resultLen
						}
					},
				})
			}, p.at.Sub(segStart))
		}
		env.ExecuteWorkflow(workflows.RunWorkflowName, in)
		now = env.Now()
		reminders += int(segReminders.Load())
		if n := applies.Load(); n != 0 {
			t.Errorf("workflow run %d applied %d times; want never (the run waits for a second approval)", segments, n)
		}

		runBytes := counter.total + segResults
		maxRunBytes = max(maxRunBytes, runBytes)
		t.Logf("workflow run %d: %s to %s, %d reminders, %d payload bytes (%s, Update results %d)",
			segments, segStart.Format("Jan 2 15:04"), now.Format("Jan 2 15:04"), segReminders.Load(), runBytes, counter.breakdown(), segResults)
		if runBytes >= maxPerRun {
			t.Errorf("workflow run %d wrote %d payload bytes; want under %d", segments, runBytes, maxPerRun)
		}

		err := env.GetWorkflowError()
		var can *workflow.ContinueAsNewError
		if errors.As(err, &can) {
			canBytes := proto.Size(can.Input)
			maxCAN = max(maxCAN, canBytes)
			t.Logf("workflow run %d continued as new with an input of %d bytes", segments, canBytes)
			if canBytes >= maxCANInput {
				t.Errorf("continue-as-new input of workflow run %d is %d bytes; want under %d", segments, canBytes, maxCANInput)
			}
			in = workflows.RunInput{}
			if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &in); err != nil {
				t.Fatal(err)
			}
			if in.Resume == nil {
				t.Fatal("continued as new without the run's state")
			}
			continue
		}
		if err != nil {
			t.Fatalf("workflow run %d: %v", segments, err)
		}
		if err := env.GetWorkflowResult(&final); err != nil {
			t.Fatal(err)
		}
		break
	}

	t.Logf("BOUNDED BYTES, %d-resource plan waiting 30 days, reminders hourly:", resources)
	t.Logf("  start input:                 %d bytes (bound %d)", inputBytes, maxInput)
	t.Logf("  continue-as-new input (max): %d bytes (bound %d)", maxCAN, maxCANInput)
	t.Logf("  payload bytes per workflow run (max of %d runs, %d wake-ups each): %d bytes (bound %d)", segments, workflows.DefaultMaxWakeups, maxRunBytes, maxPerRun)
	t.Logf("  reminders: %d over 30 days", reminders)
	for _, p := range pending {
		t.Logf("  Update %s %s on %s: result %d bytes %+v", p.name, p.id, p.at.Format("Jan 2"), p.resultLen, p.res)
	}

	if final.Status != approval.StatusTimedOut || final.UpdatedAt.Sub(start) != 30*24*time.Hour {
		t.Errorf("status %s at %v; want timed_out after 30 days", final.Status, final.UpdatedAt.Sub(start))
	}
	if segments < 4 {
		t.Errorf("%d workflow runs; want the 30-day wait split into several", segments)
	}
	if want := 30*24 - 1; reminders < want-1 || reminders > want+1 {
		t.Errorf("%d reminders over 30 days; want about %d (hourly)", reminders, want)
	}
	for _, p := range pending {
		if !p.done || p.err != nil || p.res.DecisionID != p.id {
			t.Errorf("Update %s %s: done %v, %v, %+v; want it answered under its id", p.name, p.id, p.done, p.err, p.res)
		}
		if p.resultLen == 0 || p.resultLen >= maxResultBytes {
			t.Errorf("Update %s %s answered %d bytes; want under %d", p.name, p.id, p.resultLen, maxResultBytes)
		}
	}
	if len(final.Reasons) != 1 || final.Reasons[0].Progress() != "1/2" {
		t.Errorf("reasons %+v; want iam-needs-two at 1/2 (bob once, despite the retry)", final.Reasons)
	}
}
