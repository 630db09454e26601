package terraform.policies

deny contains "always" if true
