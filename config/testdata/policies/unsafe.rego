# Parses, but does not compile: x is unsafe (never bound).
package gatehouse

deny contains msg if {
	msg := sprintf("%v", [x])
}
