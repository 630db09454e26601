# Test policy for the end-to-end tests: the shape a platform team writes.
# The input is the plan itself; Gatehouse's context is at input.gatehouse.
package gatehouse

import rego.v1

changes := [rc | some rc in input.resource_changes; not "no-op" in rc.change.actions; not "read" in rc.change.actions]

deny contains msg if {
	some rc in changes
	rc.type == "aws_kms_key"
	"delete" in rc.change.actions
	msg := sprintf("deleting %s is not allowed: KMS keys are retired, not deleted", [rc.address])
}

require_approval contains req if {
	some rc in changes
	startswith(rc.type, "aws_iam_")
	req := {
		"name": "iam-security-review",
		"approvers": {"groups": ["security"]},
		"min_approvals": 1,
		"stage": "pre_apply",
	}
}

warn contains msg if {
	cost := input.gatehouse.cost
	cost.status == "ok"
	cost.monthly_cost_delta > 100
	msg := sprintf("this change adds %v %s per month", [cost.monthly_cost_delta, cost.currency])
}
