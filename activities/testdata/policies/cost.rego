# A change that raises the monthly bill by more than 500 needs finance.
# Infracost prints amounts as strings.
package gatehouse

monthly_increase := to_number(input.cost.diffTotalMonthlyCost)

require_approval contains {
	"name": "finance",
	"approvers": {"groups": ["finance"]},
	"min_approvals": 1,
	"stage": "post_plan",
} if {
	monthly_increase > 500
}

warn contains msg if {
	monthly_increase > 0
	msg := sprintf("monthly cost rises by %s %s", [input.cost.diffTotalMonthlyCost, input.cost.currency])
}

warn contains "no cost estimate was submitted: the finance check did not run" if {
	input.cost == null
}
