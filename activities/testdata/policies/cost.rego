# A change that raises the monthly bill by more than 500 needs finance.
# input.gatehouse.cost says whether there is an estimate to compare at all.
package gatehouse

cost := input.gatehouse.cost

require_approval contains {
	"name": "finance",
	"approvers": {"groups": ["finance"]},
	"min_approvals": 1,
	"stage": "post_plan",
} if {
	cost.status == "ok"
	cost.monthly_cost_delta > 500
}

warn contains msg if {
	cost.status == "ok"
	cost.monthly_cost_delta > 0
	msg := sprintf("monthly cost rises by %v %s", [cost.monthly_cost_delta, cost.currency])
}

warn contains "no cost estimate was submitted: the finance check did not run" if {
	cost.status == "none"
}
