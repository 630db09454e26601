package activities_test

import (
	"fmt"
	"testing"

	"github.com/gatehouse-dev/gatehouse/activities"
	"github.com/gatehouse-dev/gatehouse/approval"
)

// BenchmarkEvaluatePolicy is the policy step of one run: real Rego written
// by others (OPA's Terraform tutorial policy, conftest's example) and
// Gatehouse's own, on a real plan. "prepared" is every evaluation after a
// config version's first, which reuses the compiled queries; "compiled"
// gives each evaluation a new config version, so it parses and compiles
// every policy again, as each evaluation did before policies were
// prepared. Compare the two: the ratio is what preparing saves.
func BenchmarkEvaluatePolicy(b *testing.B) {
	policies := policyFiles(b, "opa_terraform_analysis", "conftest_terraform", "deny", "warn", "require")
	for _, mode := range []string{"prepared", "compiled"} {
		b.Run(mode, func(b *testing.B) {
			a, shas := policyActivities(b, approval.Workspace{}, policies, securityPlan)
			a.Config.Version = "v0"
			in := activities.PolicyInput{RunID: "r", Workspace: "ws", PlanSHA256: shas[securityPlan]}
			if _, err := runPolicy(b, a, in); err != nil { // prepares v0
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if mode == "compiled" {
					a.Config.Version = fmt.Sprintf("v%d", i+1)
				}
				res, err := runPolicy(b, a, in)
				if err != nil || res.Error != "" {
					b.Fatalf("evaluation: %v %s", err, res.Error)
				}
			}
		})
	}
}
