package config

import (
	"context"
	"encoding/json"
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/open-policy-agent/opa/v1/rego"
)

// TestExamplePolicy evaluates examples/policies/production.rego as Gatehouse
// does (prepared by PreparePolicy, on the input its header describes), to
// check that it does what it says.
func TestExamplePolicy(t *testing.T) {
	c, err := Load(filepath.Join("..", "examples", "gatehouse.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	w, _ := c.Workspace("prod-network")
	if len(w.Policies) != 1 {
		t.Fatalf("got policies %+v; want one", w.Policies)
	}
	policy := w.Policies[0]

	var examplePlan map[string]any
	if err := json.Unmarshal([]byte(readFile(t, "../examples/plans/prod-network.json")), &examplePlan); err != nil {
		t.Fatal(err)
	}
	change := func(address, typ string, actions ...string) map[string]any {
		return map[string]any{"address": address, "type": typ, "mode": "managed",
			"provider_name": "registry.terraform.io/hashicorp/aws", "change": map[string]any{"actions": actions}}
	}
	plan := func(changes ...map[string]any) map[string]any {
		return map[string]any{"format_version": "1.2", "resource_changes": changes}
	}
	iamReview := map[string]any{"name": "iam-security-review", "approvers": map[string]any{"groups": []any{"security"}},
		"min_approvals": json.Number("1"), "stage": "pre_apply"}

	tests := []struct {
		name              string
		plan              map[string]any
		deny, warn        []string
		requireApprovalOf []map[string]any
	}{
		{"the example plan", examplePlan, nil, nil, nil},
		{"an empty plan", map[string]any{"format_version": "1.2"}, nil, nil, nil},
		{"deleting a KMS key", plan(change("aws_kms_key.main", "aws_kms_key", "delete"), change("aws_kms_key.other", "aws_kms_key", "update")),
			[]string{"aws_kms_key.main: a plan may not delete or replace a KMS key; schedule its deletion in KMS instead"}, nil, nil},
		{"replacing a KMS key", plan(change("aws_kms_key.main", "aws_kms_key", "create", "delete")),
			[]string{"aws_kms_key.main: a plan may not delete or replace a KMS key; schedule its deletion in KMS instead"}, nil, nil},
		{"changing IAM", plan(change("aws_iam_role.ci", "aws_iam_role", "update"), change("aws_iam_policy.ci", "aws_iam_policy", "create")),
			nil, nil, []map[string]any{iamReview}},
		{"reading IAM", plan(change("data.aws_iam_policy_document.ci", "aws_iam_policy_document", "read"), change("aws_iam_role.ci", "aws_iam_role", "no-op")),
			nil, nil, nil},
		{"three replaces", plan(change("a.x", "a", "delete", "create"), change("a.y", "a", "create", "delete"), change("a.z", "a", "delete", "create")),
			nil, nil, nil},
		{"four replaces", plan(change("a.w", "a", "delete", "create"), change("a.x", "a", "delete", "create"), change("a.y", "a", "create", "delete"), change("a.z", "a", "delete", "create")),
			nil, []string{"the plan replaces 4 resources: a.w, a.x, a.y, a.z"}, nil},
	}
	query, err := PreparePolicy(context.Background(), policy)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The plan itself is the input, with Gatehouse's context beside
			// it, as the worker evaluates it.
			input := maps.Clone(tt.plan)
			input["gatehouse"] = map[string]any{
				"run":          map[string]any{"id": "run-1", "message": "test"},
				"workspace":    map[string]any{"name": "prod-network", "environment": "production", "tags": []any{"network"}},
				"requested_by": "alice",
				"cost":         map[string]any{"status": "none"},
			}
			rs, err := query.Eval(context.Background(), rego.EvalInput(input))
			if err != nil {
				t.Fatal(err)
			}
			if len(rs) != 1 || len(rs[0].Expressions) != 1 {
				t.Fatalf("got result %+v; want one", rs)
			}
			doc, _ := rs[0].Expressions[0].Value.(map[string]any)
			strs := func(key string) []string {
				var out []string
				for _, x := range doc[key].([]any) {
					out = append(out, x.(string))
				}
				slices.Sort(out)
				return out
			}
			if got := strs("deny"); !reflect.DeepEqual(got, tt.deny) {
				t.Errorf("got deny %q; want %q", got, tt.deny)
			}
			if got := strs("warn"); !reflect.DeepEqual(got, tt.warn) {
				t.Errorf("got warn %q; want %q", got, tt.warn)
			}
			var reqs []map[string]any
			for _, x := range doc["require_approval"].([]any) {
				reqs = append(reqs, x.(map[string]any))
			}
			if !reflect.DeepEqual(reqs, tt.requireApprovalOf) {
				t.Errorf("got require_approval %v; want %v", reqs, tt.requireApprovalOf)
			}
		})
	}
}
