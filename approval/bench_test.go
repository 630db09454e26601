package approval_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/approval"
)

// bigWorkspace has 20 rules of every kind of condition; bigPlan changes 500
// resources: a large real-world workspace.
func bigWorkspace() approval.Workspace {
	var rules []approval.Rule
	for i := range 20 {
		rules = append(rules, approval.Rule{
			Name:         fmt.Sprintf("r%d", i),
			When:         approval.Conditions{ResourceTypes: []string{fmt.Sprintf("aws_type%d_*", i%5)}, DestroysGT: intp(i % 3)},
			Approvers:    approval.Approvers{Groups: []string{"platform", "security"}},
			MinApprovals: 2,
		})
	}
	return prodWorkspace(rules...)
}

func bigPlan() approval.Plan {
	var rs []approval.Resource
	for i := range 500 {
		rs = append(rs, approval.Resource{Address: fmt.Sprintf("aws_type%d_x.r%d", i%7, i), Type: fmt.Sprintf("aws_type%d_x", i%7),
			Actions: []approval.Action{[]approval.Action{approval.ActionCreate, approval.ActionUpdate, approval.ActionDelete, approval.ActionReplace}[i%4]}})
	}
	return approval.Summarize("big", rs)
}

// BenchmarkEvaluate measures turning a 500-resource plan into reasons with a
// 20-rule workspace: the work done when a run starts or a plan is revised.
func BenchmarkEvaluate(b *testing.B) {
	ws, plan := bigWorkspace(), bigPlan()
	b.ReportAllocs()
	for b.Loop() {
		approval.Evaluate(ws, plan, nil, alice, directory)
	}
}

// BenchmarkApprove measures one approval decision on such a run, as the
// workflow's validator and handler run it.
func BenchmarkApprove(b *testing.B) {
	run := newRunFor(bigWorkspace(), alice, bigPlan(), nil, directory, t0)
	b.ReportAllocs()
	for b.Loop() {
		r := run.Clone()
		if _, err := r.Approve(approval.Request{ID: "b", Actor: bob}, t0.Add(time.Minute)); err != nil {
			b.Fatal(err)
		}
	}
}
