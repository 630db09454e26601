# A valid policy: warn about large plans, require a review of them.
package gatehouse

large if count(input.resource_changes) > 10

warn contains "a large plan" if large

require_approval contains {"name": "large-plan", "approvers": {"groups": ["platform"]}, "min_approvals": 1} if large
