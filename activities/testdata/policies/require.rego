# Changes to IAM need two people from security before they are applied, and
# anything in production needs the platform owner.
package gatehouse

iam_changes contains rc.address if {
	some rc in input.resource_changes
	rc.mode == "managed"
	startswith(rc.type, "aws_iam_")
	some action in rc.change.actions
	action in {"create", "update", "delete"}
}

require_approval contains {
	"name": "iam-review",
	"approvers": {"groups": ["security"], "roles": ["admin"]},
	"min_approvals": 2,
	"stage": "pre_apply",
} if {
	count(iam_changes) > 0
}

require_approval contains {
	"name": "production-owner",
	"approvers": {"users": ["alice"]},
} if {
	input.gatehouse.workspace.environment == "production"
}
