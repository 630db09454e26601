# Replacing many resources at once usually means an upgrade went wider than
# meant. Instances that are replaced lose their local state.
package gatehouse

max_replaces := 2

replaced contains rc if {
	some rc in input.resource_changes
	rc.mode == "managed"
	"delete" in rc.change.actions
	"create" in rc.change.actions
}

warn contains msg if {
	count(replaced) > max_replaces
	msg := sprintf("%d resources will be replaced (more than %d)", [count(replaced), max_replaces])
}

warn contains msg if {
	some rc in replaced
	rc.type == "aws_instance"
	msg := sprintf("%s will be replaced: its local disks and public IP are lost", [rc.address])
}
