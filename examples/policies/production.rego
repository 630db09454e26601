# Gatehouse policy for production workspaces (Rego v1).
#
# Gatehouse checks every plan submitted to a workspace against the policies
# the workspace lists, before anyone is asked to approve. Every policy
# declares `package gatehouse`; Gatehouse queries three sets from it:
#
#   data.gatehouse.deny              messages; any one fails the run
#                                    (policy_failed) before approval
#   data.gatehouse.warn              messages shown to approvers with the run
#   data.gatehouse.require_approval  approvals the run needs besides the
#                                    workspace's rules and steps, each an
#                                    object {"name", "approvers": {"users",
#                                    "groups", "roles"}, "min_approvals",
#                                    "stage"} (stage post_plan, pre_apply or
#                                    post_apply; default post_plan)
#
# The input is:
#
#   input.plan       the full plan, as `terraform show -json` writes it
#   input.cost       the Infracost estimate submitted with the plan (the JSON
#                    of `infracost breakdown --format json`), or null
#   input.run        {"id", "workspace", "environment", "requested_by",
#                    "message"}
#   input.workspace  {"name", "environment", "tags"}
package gatehouse

# changes are the plan's resource changes that do something: not no-op and
# not the reads of data sources.
changes contains rc if {
	some rc in input.plan.resource_changes
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
	some rc in input.plan.resource_changes
	"delete" in rc.change.actions
	"create" in rc.change.actions
]

warn contains msg if {
	count(replaced) > 3
	msg := sprintf("the plan replaces %d resources: %s", [count(replaced), concat(", ", replaced)])
}
