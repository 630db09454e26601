# A valid policy: deny any plan that deletes a resource.
package gatehouse

deny contains msg if {
	some rc in input.resource_changes
	"delete" in rc.change.actions
	msg := sprintf("%s would be deleted", [rc.address])
}
