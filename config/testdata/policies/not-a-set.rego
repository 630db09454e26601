package gatehouse

deny := "always"
