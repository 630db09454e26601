# Rego v0 syntax, which Gatehouse does not accept: no "contains", no "if".
package gatehouse

deny[msg] {
	msg := "always"
}
