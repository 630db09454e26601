# A module that OpenTofu plans and applies offline: terraform_data is
# built in, so no provider has to be downloaded. It stands for real
# infrastructure in the README's worked example.

variable "environment" {
  type    = string
  default = "demo"
}

resource "terraform_data" "vpc" {
  input = "vpc-${var.environment}"
}

resource "terraform_data" "subnet" {
  for_each = toset(["a", "b"])
  input    = "subnet-${each.key}-${terraform_data.vpc.output}"
}
