# Two definitions of one complete rule that both hold for a production
# workspace with tags: OPA refuses to pick one.
package gatehouse

max_replaces_allowed := 2 if input.gatehouse.workspace.environment == "production"

max_replaces_allowed := 5 if count(input.gatehouse.workspace.tags) > 0

deny contains "too many replacements" if {
	count([rc | some rc in input.resource_changes; "delete" in rc.change.actions]) > max_replaces_allowed
}
