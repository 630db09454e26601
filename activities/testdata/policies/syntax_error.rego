# An old (Rego v0) policy: rule bodies without `if` do not parse in Rego v1.
package gatehouse

deny[msg] {
	some rc in input.resource_changes
	rc.type == "aws_db_instance"
	msg := sprintf("%s: databases are managed elsewhere", [rc.address])
}
