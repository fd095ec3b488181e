variable "name" {
  description = "The bucket's globally unique name."
  type        = string
}

variable "kms_key_arn" {
  description = "Key that encrypts every object."
  type        = string
}

variable "transitions" {
  description = "Storage-class moves for current objects, as days after creation."
  type = list(object({
    days          = number
    storage_class = string
  }))
  default = []
}

variable "noncurrent_version_days" {
  description = "Days an overwritten or deleted version is kept."
  type        = number
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete the bucket with its objects."
  type        = bool
}
