variable "region" {
  description = "AWS region for everything."
  type        = string
  default     = "eu-west-2"
}

variable "name" {
  description = "Prefix of every resource name; change it to run two stacks in one account."
  type        = string
  default     = "totes"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name))
    error_message = "name must be 2-21 lower-case letters, digits or hyphens, starting with a letter."
  }
}

variable "image_tag" {
  description = "Tag of the pipeline image in the ECR repository (deploy.sh passes the git commit)."
  type        = string
}

variable "alert_email" {
  description = "Address that receives failure and freshness alerts (AWS mails it a confirmation link first)."
  type        = string
}

variable "run_mode" {
  description = "How runs start: \"scheduled\" starts one Fargate task per run on schedule_expression; \"continuous\" keeps one task running as an ECS service that starts a run every run_every_seconds (`totes run --every`), for fresher data."
  type        = string
  default     = "scheduled"

  validation {
    condition     = contains(["scheduled", "continuous"], var.run_mode)
    error_message = "run_mode must be \"scheduled\" or \"continuous\"."
  }
}

variable "schedule_expression" {
  description = "How often the pipeline runs in scheduled mode, as an EventBridge Scheduler expression."
  type        = string
  default     = "rate(5 minutes)"
}

variable "run_every_seconds" {
  description = "In continuous mode, the seconds from the start of one run to the start of the next (a slower run delays the next; runs never overlap). Unused in scheduled mode."
  type        = number
  default     = 30

  validation {
    condition     = var.run_every_seconds >= 10 && var.run_every_seconds <= 3600 && floor(var.run_every_seconds) == var.run_every_seconds
    error_message = "run_every_seconds must be a whole number of seconds from 10 to 3600."
  }
}

variable "freshness_sla_minutes" {
  description = "The SLA: the freshness alarm fires when, for half this time, runs report the warehouse further behind than this or no run reports."
  type        = number
  default     = 30
}

variable "task_cpu" {
  description = "Fargate CPU units for one run (1024 = 1 vCPU)."
  type        = number
  default     = 1024
}

variable "task_memory" {
  description = "Fargate memory for one run, in MiB."
  type        = number
  default     = 2048
}

variable "log_retention_days" {
  description = "How long the pipeline's CloudWatch logs, and the payments API load balancer's access logs, are kept."
  type        = number
  default     = 365
}

variable "landing_infrequent_access_days" {
  description = "Landing-zone objects move to S3 Standard-IA after this many days (they stay readable: totes rebuild replays them)."
  type        = number
  default     = 30
}

variable "landing_glacier_days" {
  description = "Landing-zone objects move to Glacier Instant Retrieval after this many days."
  type        = number
  default     = 180
}

variable "noncurrent_version_days" {
  description = "Overwritten or deleted object versions are kept this many days in both buckets."
  type        = number
  default     = 30
}

variable "vpc_id" {
  description = "VPC the task runs in; empty means the account's default VPC."
  type        = string
  default     = ""
}

variable "subnet_ids" {
  description = "Subnets for the task (and the optional database); empty means every subnet of the VPC. They need a route to ECR, S3 and the source: a public subnet (with assign_public_ip) or a NAT."
  type        = list(string)
  default     = []
}

variable "assign_public_ip" {
  description = "Give the task a public IP. Needed in public subnets without a NAT gateway (the default VPC)."
  type        = bool
  default     = true
}

variable "database_ports" {
  description = "TCP ports the task may connect to, besides HTTPS: the source's and the warehouse's."
  type        = list(number)
  default     = [5432]
}

variable "create_warehouse_db" {
  description = "Create a small RDS PostgreSQL for the warehouse and write its URL into the warehouse secret. Leave false to use your own warehouse."
  type        = bool
  default     = false
}

variable "warehouse_db_instance_class" {
  description = "Instance class of the optional warehouse database."
  type        = string
  default     = "db.t4g.micro"
}

variable "warehouse_password_version" {
  description = "Raise by one to give the optional warehouse database a new generated password (written to the database and the secret, never to state)."
  type        = number
  default     = 1
}

variable "destroy_data_with_stack" {
  description = "Let `make destroy` delete the buckets with their objects, the image repository with its images, and the optional database without a final snapshot. Right for a sandbox account that is rebuilt weekly; set false for a long-lived one."
  type        = bool
  default     = true
}

variable "fx_url" {
  description = "The Frankfurter-style API the daily FX rates come from, over HTTPS (the task's egress allows 443)."
  type        = string
  default     = "https://api.frankfurter.dev/v1"
}

variable "payments_api" {
  description = "Also run the payments API (`totes api`) as an always-on ECS service behind an HTTPS load balancer (about $9/month for 0.25 vCPU and 0.5 GB on Fargate, and $16-20/month plus LCUs for the load balancer). Needs payments_api_domain_name and payments_api_zone_id."
  type        = bool
  default     = false
}

variable "payments_api_internet_facing" {
  description = "Put the payments API's load balancer on the internet (its subnets must then be public) instead of inside the VPC. Either way only payments_api_allowed_cidrs reach it."
  type        = bool
  default     = false
}

variable "payments_api_domain_name" {
  description = "The name the payments API is served at over HTTPS, such as api.example.com: the stack issues its certificate and points the name at the load balancer, in payments_api_zone_id. Required with payments_api."
  type        = string
  default     = ""

  validation {
    condition     = !var.payments_api || can(regex("^([a-z0-9]([a-z0-9-]*[a-z0-9])?\\.)+[a-z]([a-z0-9-]*[a-z0-9])?$", var.payments_api_domain_name))
    error_message = "payments_api needs payments_api_domain_name: the lower-case name the API is served at, such as api.example.com, in the hosted zone payments_api_zone_id."
  }
}

variable "payments_api_zone_id" {
  description = "ID of the public Route53 hosted zone that holds payments_api_domain_name (ACM validates the certificate through public DNS). Required with payments_api."
  type        = string
  default     = ""

  validation {
    condition     = !var.payments_api || can(regex("^Z[A-Z0-9]+$", var.payments_api_zone_id))
    error_message = "payments_api needs payments_api_zone_id: the ID (Z...) of the public Route53 hosted zone that holds payments_api_domain_name."
  }
}

variable "payments_api_port" {
  description = "The port the payments API listens on."
  type        = number
  default     = 8000
}

variable "payments_api_allowed_cidrs" {
  description = "CIDRs that may reach the payments API's load balancer (HTTPS, and HTTP to be redirected), for example your office's or the VPC's. Empty: nobody, until you add one."
  type        = list(string)
  default     = []
}

variable "slack_alerts" {
  description = "Also post every alert to Slack: a small Lambda subscribes to the alert topic and posts to the incoming webhook whose URL you put in the secret named by the output slack_webhook_secret."
  type        = bool
  default     = false
}

variable "athena_scan_limit_mb" {
  description = "The most one Athena query of the analysts' workgroup may scan, in MiB: a query that reaches it is cancelled (and billed for what it scanned). Athena's smallest limit is 10 MiB."
  type        = number
  default     = 1024

  validation {
    condition     = var.athena_scan_limit_mb >= 10
    error_message = "athena_scan_limit_mb must be at least 10 (Athena's smallest per-query limit)."
  }
}

variable "catalog_first_day" {
  description = "The first day the Glue tables project partitions for (yyyy-MM-dd): the oldest load day in the lake and the oldest last_updated day of any fact must not be earlier."
  type        = string
  default     = "2020-01-01"

  validation {
    condition     = can(regex("^\\d{4}-\\d{2}-\\d{2}$", var.catalog_first_day))
    error_message = "catalog_first_day must be a day written yyyy-MM-dd."
  }
}

variable "analyst_principals" {
  description = "IAM principals (ARNs) that may assume the analyst role. Empty: any principal of this account whose own policy allows sts:AssumeRole on it."
  type        = list(string)
  default     = []
}
