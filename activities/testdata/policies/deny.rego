# Deleting a KMS key makes everything it encrypted unreadable once the
# deletion window ends. Keys are retired by hand, never by a plan.
package gatehouse

deny contains msg if {
	some rc in input.resource_changes
	rc.mode == "managed"
	rc.type == "aws_kms_key"
	"delete" in rc.change.actions
	msg := sprintf("%s: deleting a KMS key is not allowed; schedule the key's deletion by hand", [rc.address])
}
