# From open-policy-agent/conftest, examples/hcl1/policy/base.rego (commit
# 6a3fd606993c1003de444a0ea93c7e916b845d4c), Apache License 2.0, Copyright
# (C) 2019 Gareth Rushgrove. Unchanged but for this header and its package,
# renamed from main to gatehouse: a conftest policy for `terraform show
# -json` output reads input.resource_changes, and must work as written.
package gatehouse
import rego.v1

denylist := [
	"google_iam",
	"google_container",
]

deny contains msg if {
	check_resources(input.resource_changes, denylist)
	banned := concat(", ", denylist)
	msg := sprintf("Terraform plan will change prohibited resources in the following namespaces: %v", [banned])
}

# Checks whether the plan will cause resources with certain prefixes to change
check_resources(resources, disallowed_prefixes) if {
	startswith(resources[_].type, disallowed_prefixes[_])
}
