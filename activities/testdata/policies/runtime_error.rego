# Meant to read a replica count, but hands to_number the resource's name:
# with strict built-in errors that fails at runtime instead of being
# silently undefined.
package gatehouse

warn contains msg if {
	some rc in input.resource_changes
	to_number(rc.name) > 3
	msg := sprintf("%s: more than 3 replicas", [rc.address])
}
