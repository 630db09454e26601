package plan_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/plan"
)

// largePlan builds a plan of n resource changes shaped like a real one: each
// resource appears in resource_changes (with before, after, unknown and
// sensitive values) and in planned_values, as Terraform prints them. 50,000
// resources come to about 19 MiB: more than the 15 MiB a plan of that many
// resources is expected to be, so the benchmark errs on the slow side.
func largePlan(n int) []byte {
	var b strings.Builder
	b.Grow(n * 330)
	b.WriteString(`{"format_version":"1.2","terraform_version":"1.9.8","resource_changes":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		actions := [...]string{`["update"]`, `["create"]`, `["delete","create"]`, `["no-op"]`}[i%4]
		fmt.Fprintf(&b, `{"address":"aws_instance.web[%d]","mode":"managed","type":"aws_instance","name":"web","index":%d,`+
			`"provider_name":"registry.terraform.io/hashicorp/aws","change":{"actions":%s,`+
			`"before":{"ami":"ami-0c55","type":"t3.micro"},"after":{"ami":"ami-0c55","type":"t3.small"},`+
			`"after_unknown":{"id":true},"before_sensitive":{},"after_sensitive":{}}}`,
			i, i, actions)
	}
	b.WriteString(`],"planned_values":{"root_module":{"resources":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"address":"aws_instance.web[%d]"}`, i)
	}
	b.WriteString(`]}}}`)
	return []byte(b.String())
}

func TestLargePlanParses(t *testing.T) {
	got, err := plan.Parse(largePlan(1000))
	if err != nil {
		t.Fatal(err)
	}
	// A quarter of the changes are no-ops.
	if len(got.ResourceChanges) != 750 || got.Adds != 500 || got.Changes != 250 || got.Destroys != 250 {
		t.Errorf("got %d changes, %+v; want 750 changes, adds 500, changes 250, destroys 250", len(got.ResourceChanges), got.PlanSummary)
	}
}

// BenchmarkParse50k parses a 50,000-resource plan. It must stay well under
// two seconds: the gateway parses plans inside a request.
func BenchmarkParse50k(b *testing.B) {
	data := largePlan(50_000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := plan.Parse(data); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(data))/(1<<20), "MiB")
}
