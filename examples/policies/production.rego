# Gatehouse policy for production workspaces (Rego v1).
#
# Gatehouse checks every plan submitted to a workspace against the policies
# the workspace lists, before anyone is asked to approve. Every policy
# declares `package gatehouse` and is evaluated on its own: a rule defined in
# another policy file is not visible here. Gatehouse reads these sets:
#
#   deny, deny_*, violation,   messages (strings, or objects with a "msg");
#   violation_*                any one fails the run (policy_failed) before
#                              approval
#   warn, warn_*               messages shown to approvers with the run
#   require_approval           approvals the run needs besides the
#                              workspace's rules and steps, each an object
#                              {"name", "approvers": {"users", "groups",
#                              "roles"}, "min_approvals", "stage"} (stage
#                              post_plan, pre_apply or post_apply; default
#                              post_plan)
#
# The input is the plan exactly as `terraform show -json` prints it
# (input.resource_changes, input.planned_values, input.configuration, ...),
# so conftest and OPA policies for Terraform plans work unchanged. Beside it:
#
#   input.gatehouse.run           {"id", "message"}
#   input.gatehouse.workspace     {"name", "environment", "tags"}
#   input.gatehouse.requested_by  the requester's user id
#   input.gatehouse.cost          {"status": "none"} without an estimate;
#                                 {"status": "failed", "problems", "estimate"}
#                                 when Infracost could not price the plan;
#                                 {"status": "ok", "currency", "monthly_cost",
#                                 "past_monthly_cost", "monthly_cost_delta",
#                                 "estimate"} otherwise
#
# Sensitive values of the plan are replaced by "(sensitive)" in the messages
# Gatehouse keeps.
package gatehouse

# changes are the plan's resource changes that do something: not no-op and
# not the reads of data sources.
changes contains rc if {
	some rc in input.resource_changes
	some action in rc.change.actions
	action in {"create", "update", "delete"}
}

# A KMS key's deletion (a replace deletes it too) loses every piece of data
# encrypted with it. Keys are retired by hand, with a waiting period.
deny contains msg if {
	some rc in changes
	rc.type == "aws_kms_key"
	"delete" in rc.change.actions
	msg := sprintf("%s: a plan may not delete or replace a KMS key; schedule its deletion in KMS instead", [rc.address])
}

# Any change to IAM needs security's review before it is applied.
require_approval contains {
	"name": "iam-security-review",
	"approvers": {"groups": ["security"]},
	"min_approvals": 1,
	"stage": "pre_apply",
} if {
	some rc in changes
	startswith(rc.type, "aws_iam_")
}

# replaced lists the addresses of the resources the plan replaces (deletes
# and creates again, in either order).
replaced := [rc.address |
	some rc in input.resource_changes
	"delete" in rc.change.actions
	"create" in rc.change.actions
]

warn contains msg if {
	count(replaced) > 3
	msg := sprintf("the plan replaces %d resources: %s", [count(replaced), concat(", ", replaced)])
}
