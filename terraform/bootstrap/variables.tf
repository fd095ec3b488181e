variable "region" {
  description = "AWS region of the state bucket (the same as the stack's)."
  type        = string
  default     = "eu-west-2"
}

variable "name" {
  description = "The stack's name prefix (the same as the stack's)."
  type        = string
  default     = "totes"
}

variable "github_repository" {
  description = "owner/name of the GitHub repository whose main branch may deploy; empty creates no deploy role."
  type        = string
  default     = ""
}
