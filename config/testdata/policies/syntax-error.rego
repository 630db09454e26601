package gatehouse

deny contains msg if {
	msg := "unterminated
}
