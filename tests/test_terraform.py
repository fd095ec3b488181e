"""The AWS stack's wiring, checked offline by parsing its HCL (no Terraform binary or AWS account
is reachable here; checkov runs in `make lint`).

Each `check_*` function asserts one piece of wiring. The tests run every check on the stack as
written, then break the stack one piece at a time in a copy and show that a check fails."""

from __future__ import annotations

import ast
import math
import os
import re
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

import hcl2
import pytest
import uvicorn

from ingestion.apps.api_auth import SECRET_SETTING as API_TOKENS_SETTING
from ingestion.config import load_settings
from ingestion.ops.ledger import FinishedRun, TableRow
from ingestion.ops.metrics import NAMESPACE, run_metrics
from ingestion.ops.slack import SECRET_VARIABLE

REPO = Path(__file__).resolve().parent.parent
TERRAFORM = REPO / "terraform"
PLAIN = hcl2.SerializationOptions(
    with_comments=False, explicit_blocks=False, strip_string_quotes=True
)


_PARSED: dict[str, dict[str, Any]] = {}  # HCL text -> its parse: a broken copy changes one file


def _parsed(path: Path) -> dict[str, Any]:
    text = path.read_text()
    if text not in _PARSED:
        _PARSED[text] = hcl2.loads(text, serialization_options=PLAIN)
    return _PARSED[text]


def _locals(folder: Path) -> dict[str, Any]:
    return {
        name: value
        for path in sorted(folder.glob("*.tf"))
        for block in _parsed(path).get("locals", [])
        for name, value in block.items()
    }


@dataclass
class Stack:
    """The blocks of one Terraform root module, by kind, type and name."""

    resources: dict[tuple[str, str], dict[str, Any]]
    data: dict[tuple[str, str], dict[str, Any]]
    modules: dict[str, dict[str, Any]]
    variables: dict[str, dict[str, Any]]
    outputs: dict[str, dict[str, Any]]
    locals: dict[str, Any]

    @classmethod
    def parse(cls, folder: Path) -> Stack:
        blocks: dict[str, dict[Any, dict[str, Any]]] = {
            kind: {} for kind in ("resource", "data", "module", "variable", "output")
        }
        for path in sorted(folder.glob("*.tf")):
            parsed = _parsed(path)
            for kind in ("resource", "data"):
                for entry in parsed.get(kind, []):
                    for type_, named in entry.items():
                        for name, body in named.items():
                            blocks[kind][(type_, name)] = body
            for kind in ("module", "variable", "output"):
                for entry in parsed.get(kind, []):
                    blocks[kind].update(entry)
        return cls(
            resources=blocks["resource"],
            data=blocks["data"],
            modules=blocks["module"],
            variables=blocks["variable"],
            outputs=blocks["output"],
            locals=_locals(folder),
        )

    def resource(self, type_: str, name: str) -> dict[str, Any]:
        assert (type_, name) in self.resources, f"no resource {type_}.{name}"
        return self.resources[(type_, name)]

    def of_type(self, type_: str) -> dict[str, dict[str, Any]]:
        return {name: body for (t, name), body in self.resources.items() if t == type_}

    def role_statements(self, role: str) -> list[dict[str, Any]]:
        """Every statement of the inline policies attached to `aws_iam_role.<role>`."""
        statements = []
        for body in self.of_type("aws_iam_role_policy").values():
            if body["role"] != f"${{aws_iam_role.{role}.id}}":
                continue
            document = re.fullmatch(  # [0]: the document of an optional role
                r"\$\{data\.aws_iam_policy_document\.(\w+)(?:\[0\])?\.json\}", body["policy"]
            )
            assert document, f"the policy of role {role} is not a policy document"
            statements += self.data[("aws_iam_policy_document", document.group(1))]["statement"]
        assert statements, f"no policy is attached to role {role}"  # a misnamed role allows nothing
        return statements

    def allowed(self, role: str, action: str) -> set[str]:
        """The resources on which `role` may do `action`."""
        return {
            resource
            for statement in self.role_statements(role)
            if statement.get("effect", "Allow") == "Allow" and action in statement["actions"]
            for resource in statement["resources"]
        }


def expression(text: str) -> Any:
    """The value of an HCL expression such as `${jsonencode({...})}`, its references kept as
    `${...}` strings: the argument of jsonencode is itself HCL."""
    inner = re.fullmatch(r"\$\{jsonencode\((.*)\)\}", text, flags=re.DOTALL)
    assert inner, f"not a jsonencode() expression: {text[:60]}"
    return hcl2.loads(f"value = {inner.group(1)}\n", serialization_options=PLAIN)["value"]


def ref(address: str) -> str:
    return f"${{{address}}}"


def hcl_value(text: str) -> Any:
    return hcl2.loads(f"value = {text}\n", serialization_options=PLAIN)["value"]


def top_level(text: str, separator: str) -> list[str] | None:
    """`text` split at each `separator` outside brackets and strings; None when `text` is not
    one expression (it closes a bracket it did not open, as `a}:${b` does)."""
    parts, start, depth, quoted, at = [], 0, 0, False, 0
    while at < len(text):
        char = text[at]
        if quoted:
            at += char == "\\"  # an escaped character cannot end the string
            quoted = char != '"'
        elif char == '"':
            quoted = True
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
            if depth < 0:
                return None
        elif depth == 0 and text.startswith(separator, at):
            parts.append(text[start:at])
            start = at = at + len(separator)
            continue
        at += 1
    return [*parts, text[start:]]


MODES = ("scheduled", "continuous")


def in_mode(stack: Stack, value: Any, mode: str) -> Any:
    """`value` as Terraform computes it with `run_mode = mode`, as far as the mode decides it:
    `local.continuous ? a : b` is a or b, `concat(...)` joins its lists and a local the mode
    decides is looked up; other references stay `${...}` strings (a list, such as a splat, as
    one item)."""
    if isinstance(value, list):
        return [in_mode(stack, item, mode) for item in value]
    if isinstance(value, dict):
        return {key: in_mode(stack, item, mode) for key, item in value.items()}
    inner = re.fullmatch(r"\$\{(.*)\}", value, flags=re.DOTALL) if isinstance(value, str) else None
    if not inner or top_level(inner.group(1), " ? ") is None:
        return value
    text = inner.group(1)
    local = re.fullmatch(r"local\.(\w+)", text)
    if local and "local.continuous ?" in str(stack.locals.get(local.group(1))):
        return in_mode(stack, stack.locals[local.group(1)], mode)
    if text.startswith("concat(") and text.endswith(")"):
        parts = in_mode(stack, hcl_value(f"[{text.removeprefix('concat(')[:-1]}]"), mode)
        return [item for part in parts for item in (part if isinstance(part, list) else [part])]
    condition, *branches = top_level(text, " ? ") or []
    if condition != "local.continuous":
        return value
    assert stack.locals["continuous"] == ref('var.run_mode == "continuous"')
    (branches,) = branches
    continuous, scheduled = top_level(branches, " : ") or []
    return in_mode(stack, hcl_value(continuous if mode == "continuous" else scheduled), mode)


def pipeline_container(stack: Stack, mode: str) -> dict[str, Any]:
    """The pipeline task's container as `run_mode = mode` defines it."""
    task = stack.resource("aws_ecs_task_definition", "pipeline")
    (container,) = expression(task["container_definitions"])
    return in_mode(stack, container, mode)


def modes_with(stack: Stack, type_: str, name: str) -> set[str]:
    """The run modes in which resource `type_.name` exists."""
    count = stack.resource(type_, name).get("count", 1)
    return {mode for mode in MODES if in_mode(stack, count, mode)}


# --- the checks ------------------------------------------------------------------------------


def check_schedule_runs_the_task(stack: Stack) -> None:
    (schedule,) = stack.of_type("aws_scheduler_schedule").values()
    assert stack.variables["schedule_expression"]["default"] == "rate(5 minutes)"
    assert schedule["schedule_expression"] == ref("var.schedule_expression")
    (target,) = schedule["target"]
    assert target["arn"] == ref("aws_ecs_cluster.pipeline.arn")
    assert target["role_arn"] == ref("aws_iam_role.scheduler[0].arn")
    (ecs,) = target["ecs_parameters"]
    assert ecs["task_definition_arn"] == ref("aws_ecs_task_definition.pipeline.arn")
    assert ecs["launch_type"] == "FARGATE"
    (network,) = ecs["network_configuration"]
    assert network["security_groups"] == [ref("aws_security_group.task.id")]
    (retry,) = target["retry_policy"]
    assert retry["maximum_retry_attempts"] > 0
    assert "dead_letter_config" in target, "what the schedule cannot start is lost"
    (dead_letters,) = target["dead_letter_config"]
    queue = re.fullmatch(r"\$\{aws_sqs_queue\.(\w+)\[0\]\.arn\}", dead_letters["arn"])
    assert queue, "the dead letters go to no queue of this stack"
    # the scheduler's role may start exactly this task, and hand it exactly its two roles
    assert stack.allowed("scheduler[0]", "ecs:RunTask") == {ecs["task_definition_arn"]}
    assert stack.allowed("scheduler[0]", "iam:PassRole") == {
        ref("aws_iam_role.task.arn"),
        ref("aws_iam_role.execution.arn"),
    }
    assert stack.allowed("scheduler[0]", "sqs:SendMessage") == {dead_letters["arn"]}
    # the schedule and what serves only it exist in scheduled mode, the default, alone
    run_mode = stack.variables["run_mode"]
    assert run_mode["default"] == "scheduled" and run_mode["validation"]
    for type_, name in (
        ("aws_scheduler_schedule", "pipeline"),
        ("aws_sqs_queue", queue.group(1)),
        ("aws_cloudwatch_metric_alarm", "schedule_dead_letters"),
        ("aws_iam_role", "scheduler"),
        ("aws_iam_role_policy", "scheduler"),
    ):
        assert modes_with(stack, type_, name) == {"scheduled"}, f"{type_}.{name}"


def check_service_runs_one_pipeline_task_at_a_time(stack: Stack) -> None:
    service = stack.resource("aws_ecs_service", "pipeline")
    assert modes_with(stack, "aws_ecs_service", "pipeline") == {"continuous"}
    assert service["cluster"] == ref("aws_ecs_cluster.pipeline.id")
    assert service["task_definition"] == ref("aws_ecs_task_definition.pipeline.arn")
    assert service["launch_type"] == "FARGATE"
    assert service["desired_count"] == 1
    assert not stack.of_type("aws_appautoscaling_target"), "nothing may scale it past one task"
    # a deploy stops the old task (its stage finishes) before it starts the new one
    assert service["deployment_maximum_percent"] == 100, "a deploy would run two tasks at once"
    assert service["deployment_minimum_healthy_percent"] == 0, "a deploy would need two tasks"
    assert service["deployment_circuit_breaker"] == [{"enable": True, "rollback": True}]
    assert service["wait_for_steady_state"] is False
    # where the scheduled task runs: the same subnets, security group and public IP
    (schedule,) = stack.of_type("aws_scheduler_schedule").values()
    (network,) = schedule["target"][0]["ecs_parameters"][0]["network_configuration"]
    assert network == {
        "subnets": ref("local.subnet_ids"),
        "security_groups": [ref("aws_security_group.task.id")],
        "assign_public_ip": ref("var.assign_public_ip"),
    }
    assert service["network_configuration"] == [network]


def check_continuous_task_runs_every_interval_and_stops_between_stages(stack: Stack) -> None:
    every = stack.variables["run_every_seconds"]
    assert every["type"] == "number" and every["validation"]
    seconds = every["default"]
    assert 10 <= seconds < 300, "continuous mode is for runs more often than the schedule's"
    scheduled, continuous = (pipeline_container(stack, mode) for mode in MODES)
    assert scheduled["command"] == ["run"]
    assert continuous["command"] == ["run", "--every", ref("tostring(var.run_every_seconds)")]
    # SIGTERM lets the stage in progress finish; Fargate's default kills it after 30 s
    for container in (scheduled, continuous):
        assert container.get("stopTimeout") == 120, "a stop kills the run in the middle of a stage"
    # the source's key check (it finds deletes) stays about hourly, as the default of every 12
    # runs is at the schedule's 5 minutes
    assert load_settings({}, env_file=Path("/nonexistent/.env")).key_check_every * 300 == 3600
    scheduled_environment, continuous_environment = (
        {entry["name"]: entry["value"] for entry in container["environment"]}
        for container in (scheduled, continuous)
    )
    assert dict(continuous_environment.items() - scheduled_environment.items()) == {
        "TOTES_KEY_CHECK_EVERY": ref("tostring(local.key_check_every)")
    }
    assert scheduled_environment.items() <= continuous_environment.items()
    assert stack.locals["key_check_every"] == ref("ceil(3600 / var.run_every_seconds)")
    given = {"TOTES_KEY_CHECK_EVERY": str(math.ceil(3600 / seconds))}
    runs = load_settings(given, env_file=Path("/nonexistent/.env")).key_check_every
    assert 3600 <= runs * seconds < 3600 + seconds
    # a task started by hand runs once, whichever command the task definition has
    command = stack.outputs["run_task_command"]["value"]
    hand_run = re.search(r"--overrides '\$\{jsonencode\((.*?)\)\}'", command)
    assert hand_run, "run_task_command would start a task that runs until it is stopped"
    assert hcl_value(hand_run.group(1)) == {
        "containerOverrides": [{"name": continuous["name"], "command": ["run"]}]
    }


def check_a_stuck_service_alerts(stack: Stack) -> None:
    rule = stack.resource("aws_cloudwatch_event_rule", "service_impaired")
    assert modes_with(stack, "aws_cloudwatch_event_rule", "service_impaired") == {"continuous"}
    pattern = expression(rule["event_pattern"])
    assert pattern["source"] == ["aws.ecs"]
    assert pattern["resources"] == [ref("aws_ecs_service.pipeline[0].id")]
    assert set(pattern["detail-type"]) == {"ECS Service Action", "ECS Deployment State Change"}
    assert set(pattern["detail"]["eventName"]) == {
        "SERVICE_TASK_START_IMPAIRED",
        "SERVICE_DEPLOYMENT_FAILED",
    }
    targets = [
        name
        for name, body in stack.of_type("aws_cloudwatch_event_target").items()
        if body["rule"] == ref("aws_cloudwatch_event_rule.service_impaired[0].name")
        and body["arn"] == ref("aws_sns_topic.alerts.arn")
    ]
    assert len(targets) == 1, "the rule alerts no one"
    assert modes_with(stack, "aws_cloudwatch_event_target", targets[0]) == {"continuous"}
    # the failed-task rule matches the service's tasks too: it tells no task apart by who
    # started it (a graceful stop exits 0 and does not match)
    failed = expression(stack.resource("aws_cloudwatch_event_rule", "task_failed")["event_pattern"])
    assert set(failed) == {"source", "detail-type", "detail"}
    assert set(failed["detail"]) == {"clusterArn", "lastStatus", "$or"}


def check_task_reaches_exactly_three_buckets_and_two_secrets(stack: Stack) -> None:
    task = stack.resource("aws_ecs_task_definition", "pipeline")
    assert task["task_role_arn"] == ref("aws_iam_role.task.arn")
    assert task["execution_role_arn"] == ref("aws_iam_role.execution.arn")
    zones = {ref("module.ingestion_bucket.arn"), ref("module.processed_bucket.arn")}
    buckets = zones | {ref("module.drop_bucket.arn")}
    s3_resources = {
        resource
        for statement in stack.role_statements("task")
        if any(action.startswith("s3:") for action in statement["actions"])
        for resource in statement["resources"]
    }
    assert {r.split("}")[0] + "}" for r in s3_resources} == buckets
    assert stack.allowed("task", "s3:GetObject") == {
        ref("module.ingestion_bucket.arn") + "/${local.lake_prefix}/*",
        ref("module.processed_bucket.arn") + "/${local.processed_prefix}/*",
        ref("module.drop_bucket.arn") + "/${local.deliveries_prefix}/*",
    }
    # the delivery partner's files are only read: a bad one stays where the partner put it
    for action in ("s3:PutObject", "s3:DeleteObject"):
        written = {r.split("}")[0] + "}" for r in stack.allowed("task", action)}
        assert written == zones, action
    for role in ("task", "execution", "scheduler[0]"):
        for statement in stack.role_statements(role):
            for action in statement["actions"]:
                assert action != "*" and not action.endswith(":*"), f"{role} may do {action}"
            if statement["resources"] == ["*"]:
                assert statement["actions"] == ["ecr:GetAuthorizationToken"], statement
    # ECS reads the secrets (execution role) and hands them to the process as variables
    secrets = {
        ref("aws_secretsmanager_secret.source_url.arn"),
        ref("aws_secretsmanager_secret.warehouse_url.arn"),
    }
    assert stack.allowed("execution", "secretsmanager:GetSecretValue") == secrets
    assert stack.allowed("task", "secretsmanager:GetSecretValue") == set()
    (container,) = expression(task["container_definitions"])
    assert {entry["valueFrom"] for entry in container["secrets"]} == secrets
    assert stack.allowed("task", "sns:Publish") == {ref("aws_sns_topic.alerts.arn")}


def check_container_speaks_the_configuration_contract(stack: Stack) -> None:
    # as scheduled mode makes it; continuous mode's additions have their own check
    container = pipeline_container(stack, "scheduled")
    assert container["image"].startswith(ref("aws_ecr_repository.pipeline.repository_url"))
    environment = {entry["name"]: entry["value"] for entry in container["environment"]}
    assert environment["TOTES_ALERT_TOPIC_ARN"] == ref("aws_sns_topic.alerts.arn")
    assert environment["TOTES_LOG_FORMAT"] == "json"
    # the names the container gets are the ones totes reads: nothing falls back to the
    # embedded Postgres or to a local folder
    given = {name: "s3://bucket/prefix" for name in environment}
    given |= {entry["name"]: "postgresql://u:p@db.example:5432/x" for entry in container["secrets"]}
    assert environment["TOTES_FX_URL"] == ref("var.fx_url")  # the real rates, not the stub
    given["TOTES_FX_URL"] = stack.variables["fx_url"]["default"]
    settings = load_settings(given, env_file=Path("/nonexistent/.env"))
    assert settings.fx_url and settings.fx_url.startswith("https://")
    assert not settings.embedded_source and not settings.embedded_warehouse
    assert settings.lake_url.startswith("s3://") and settings.processed_url.startswith("s3://")
    assert environment.get("TOTES_DELIVERIES_URL") == ref("local.deliveries_url")
    assert settings.deliveries_url.startswith("s3://")
    assert settings.alert_topic_arn and settings.log_group
    logs = container["logConfiguration"]
    assert logs["logDriver"] == "awslogs"
    assert logs["options"]["awslogs-group"] == ref("aws_cloudwatch_log_group.pipeline.name")
    log_group = stack.resource("aws_cloudwatch_log_group", "pipeline")
    assert log_group["retention_in_days"] == ref("var.log_retention_days")
    assert stack.allowed("execution", "logs:PutLogEvents") == {
        ref("aws_cloudwatch_log_group.pipeline.arn") + ":*"
    }


def check_failures_and_alarms_reach_the_topic(stack: Stack) -> None:
    topic = ref("aws_sns_topic.alerts.arn")
    rule = stack.resource("aws_cloudwatch_event_rule", "task_failed")
    pattern = expression(rule["event_pattern"])
    assert pattern["detail-type"] == ["ECS Task State Change"]
    assert pattern["detail"]["lastStatus"] == ["STOPPED"]
    assert pattern["detail"]["clusterArn"] == [ref("aws_ecs_cluster.pipeline.arn")]
    assert {"containers": {"exitCode": [{"anything-but": 0}]}} in pattern["detail"]["$or"]
    targets = [
        body
        for body in stack.of_type("aws_cloudwatch_event_target").values()
        if body["rule"] == ref("aws_cloudwatch_event_rule.task_failed.name")
    ]
    assert [target["arn"] for target in targets] == [topic]
    # an encrypted topic accepts the rule's and the alarms' messages only if its policy says so
    policy = stack.resource("aws_sns_topic_policy", "alerts")
    document = stack.data[("aws_iam_policy_document", "alerts")]
    assert policy["policy"] == ref("data.aws_iam_policy_document.alerts.json")
    publishers = {
        service
        for statement in document["statement"]
        for principal in statement["principals"]
        for service in principal["identifiers"]
    }
    assert {"events.amazonaws.com", "cloudwatch.amazonaws.com"} <= publishers
    # every rule that targets the topic, in either mode, is one the policy lets publish
    for mode in MODES:
        allowed = {
            arn
            for statement in document["statement"]
            if "events.amazonaws.com" in statement["principals"][0]["identifiers"]
            for condition in statement.get("condition", [])
            if condition["variable"] == "aws:SourceArn"
            for arn in in_mode(stack, condition["values"], mode)
        }
        for name, target in stack.of_type("aws_cloudwatch_event_target").items():
            present = mode in modes_with(stack, "aws_cloudwatch_event_target", name)
            if target["arn"] != topic or not present:
                continue
            rule = re.fullmatch(
                r"\$\{aws_cloudwatch_event_rule\.(\w+)(\[0\])?\.name\}", target["rule"]
            )
            assert rule, f"event target {name} names no rule of this stack"
            arns = {
                ref(f"aws_cloudwatch_event_rule.{rule.group(1)}{index}.arn")
                for index in (["[0]", "[*]"] if rule.group(2) else [""])
            }
            assert arns & allowed, f"{mode}: the topic refuses the messages of rule {rule.group(1)}"

    alarms = stack.of_type("aws_cloudwatch_metric_alarm")
    for name, alarm in alarms.items():
        assert alarm["alarm_actions"] == [topic], f"alarm {name} does not alert"
    emitted = metric_names_emitted_by_a_run()
    watched = {
        alarm["metric_name"]: alarm for alarm in alarms.values() if alarm["namespace"] == NAMESPACE
    }
    assert {"FreshnessLagSeconds", "RunFailed"} <= set(watched)
    for metric, alarm in watched.items():
        dimensions = tuple(sorted(alarm["dimensions"].items()))
        assert (metric, dimensions) in emitted, f"no run emits {metric} {dimensions}"
    assert watched["FreshnessLagSeconds"]["treat_missing_data"] == "breaching"


def check_alerts_are_mailed(stack: Stack) -> None:
    # the subscription that is always there; the optional Slack one has its own check
    subscriptions = [
        body for body in stack.of_type("aws_sns_topic_subscription").values() if "count" not in body
    ]
    assert len(subscriptions) == 1, f"{len(subscriptions)} subscriptions to the alerts"
    (subscription,) = subscriptions
    assert subscription["topic_arn"] == ref("aws_sns_topic.alerts.arn")
    assert subscription["protocol"] == "email"
    assert subscription["endpoint"] == ref("var.alert_email")
    assert "default" not in stack.variables["alert_email"], "the address must be asked for"


def check_buckets_are_private_encrypted_and_kept(stack: Stack) -> None:
    module = Stack.parse(TERRAFORM / "modules" / "private_bucket")
    for name in ("ingestion_bucket", "processed_bucket"):
        assert stack.modules[name]["source"] == "./modules/private_bucket"
        assert stack.modules[name]["kms_key_arn"] == ref("aws_kms_key.totes.arn")
    assert stack.modules["ingestion_bucket"]["transitions"], "old landing data never gets cheaper"
    (block,) = module.of_type("aws_s3_bucket_public_access_block").values()
    assert all(
        block[flag] is True
        for flag in (
            "block_public_acls",
            "block_public_policy",
            "ignore_public_acls",
            "restrict_public_buckets",
        )
    )
    (versioning,) = module.of_type("aws_s3_bucket_versioning").values()
    assert versioning["versioning_configuration"][0]["status"] == "Enabled"
    (encryption,) = module.of_type("aws_s3_bucket_server_side_encryption_configuration").values()
    default = encryption["rule"][0]["apply_server_side_encryption_by_default"][0]
    assert default == {"sse_algorithm": "aws:kms", "kms_master_key_id": ref("var.kms_key_arn")}
    (deny,) = module.data[("aws_iam_policy_document", "tls_only")]["statement"]
    assert deny["effect"] == "Deny" and deny["condition"][0]["variable"] == "aws:SecureTransport"
    (lifecycle,) = module.of_type("aws_s3_bucket_lifecycle_configuration").values()
    assert lifecycle["rule"][0]["noncurrent_version_expiration"]
    (registry,) = stack.of_type("aws_ecr_repository").values()
    assert registry["image_scanning_configuration"][0]["scan_on_push"] is True


def check_no_secret_value_reaches_state(stack: Stack) -> None:
    for (type_, name), body in stack.resources.items():
        assert "password" not in body, f"{type_}.{name} keeps a password in state"
        if type_ == "aws_secretsmanager_secret_version":
            assert "secret_string" not in body and "secret_string_wo" in body, name
    for name in stack.variables:
        assert "password" not in name or "version" in name, f"variable {name} would hold a secret"


API_GATED = ref("var.payments_api ? 1 : 0")
API_TASK_GROUP = ref("aws_security_group.payments_api[0].id")
API_LB_GROUP = ref("aws_security_group.payments_api_lb[0].id")
API_LB = ref("aws_lb.payments_api[0].arn")
API_TARGETS = ref("aws_lb_target_group.payments_api[0].arn")
API_TOKENS = ref("aws_secretsmanager_secret.api_tokens[0].arn")
API_LOGS = "aws_s3_bucket.payments_api_logs[0]"
# the ELB security policies whose oldest protocol is TLS 1.2 (or 1.3)
TLS_1_2_OR_LATER = re.compile(r"ELBSecurityPolicy-(TLS13-1-[23]|TLS-1-2|FS-1-2)-[\w-]+")
# regions opened from August 2022: ELB writes their access logs as its log-delivery service
NEWER_REGIONS = ("me-central-1", "eu-south-2", "eu-central-2", "ap-south-2", "ap-southeast-4")


def payments_api_container(stack: Stack) -> dict[str, Any]:
    task = stack.resource("aws_ecs_task_definition", "payments_api")
    (container,) = expression(task["container_definitions"])
    return container


def statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The statements of a policy document, a dynamic one's content with its `for_each`."""
    return document.get("statement", []) + [
        {**content, "for_each": block["statement"]["for_each"]}
        for block in document.get("dynamic", [])
        if "statement" in block
        for content in block["statement"]["content"]
    ]


def check_payments_api_is_optional_and_needs_a_name_and_a_zone(stack: Stack) -> None:
    assert stack.variables["payments_api"]["default"] is False
    assert stack.variables["payments_api_allowed_cidrs"]["default"] == []
    # everything of the API exists with it only
    api = {
        (kind, type_, name): body
        for kind, blocks in (("resource", stack.resources), ("data", stack.data))
        for (type_, name), body in blocks.items()
        if name.startswith("payments_api") or name == "api_tokens"
    }
    kinds = {type_ for _, type_, _ in api}
    assert {"aws_ecs_service", "aws_lb", "aws_lb_listener", "aws_acm_certificate"} <= kinds
    assert {"aws_secretsmanager_secret", "aws_iam_role", "aws_s3_bucket"} <= kinds
    for (kind, type_, name), body in api.items():
        gate = body.get("count", body.get("for_each"))
        local = re.fullmatch(r"\$\{local\.(\w+)\}", str(gate))
        gate = stack.locals[local.group(1)] if local else gate
        assert gate == API_GATED or str(gate).startswith("${var.payments_api ? "), (
            f"{kind} {type_}.{name} exists without payments_api"
        )
    elb_account = stack.data[("aws_elb_service_account", "current")]
    assert elb_account["count"].startswith("${var.payments_api && ")
    # turned on without a name and a zone, the plan stops and says what is missing
    for name, good, bad in (
        ("payments_api_domain_name", "api.example.com", ("", "api", "https://api.example.com")),
        ("payments_api_zone_id", "Z0123456789ABCDEFGHIJ", ("", "example.com")),
    ):
        variable = stack.variables[name]
        assert variable["type"] == "string" and variable["default"] == ""
        (validation,) = variable.get("validation", [{"condition": ""}])
        condition = re.fullmatch(
            r'\$\{!var\.payments_api \|\| can\(regex\("(.*)", var\.(\w+)\)\)\}',
            validation["condition"],
        )
        assert condition and condition.group(2) == name, f"payments_api may run without {name}"
        pattern = condition.group(1).replace("\\\\", "\\")  # HCL's escape of the backslash
        assert re.search(pattern, good), f"{name} refuses {good}"
        for value in bad:
            assert not re.search(pattern, value), f"{name} accepts {value!r}"
        assert validation["error_message"].startswith(f"payments_api needs {name}: ")


def check_payments_api_reads_the_warehouse_and_only_its_token_secret(stack: Stack) -> None:
    task = stack.resource("aws_ecs_task_definition", "payments_api")
    service = stack.resource("aws_ecs_service", "payments_api")
    assert service["task_definition"] == ref("aws_ecs_task_definition.payments_api[0].arn")
    assert task["execution_role_arn"] == ref("aws_iam_role.execution.arn")
    assert task["task_role_arn"] == ref("aws_iam_role.payments_api[0].arn")
    container = payments_api_container(stack)
    assert container["command"][0] == "api"
    assert "/health" in " ".join(container["healthCheck"]["command"])
    # ECS hands it the warehouse URL; the tokens it reads itself and rereads every minute, so a
    # new one needs no redeploy
    assert [s["name"] for s in container["secrets"]] == ["TOTES_WAREHOUSE_URL"]
    environment = {entry["name"]: entry["value"] for entry in container["environment"]}
    assert environment.get(API_TOKENS_SETTING) == API_TOKENS  # the name the API reads
    assert environment.get("AWS_REGION") == ref("var.region")
    role = "payments_api[0]"
    actions = {
        action for statement in stack.role_statements(role) for action in statement["actions"]
    }
    assert actions == {"secretsmanager:GetSecretValue", "kms:Decrypt"}
    assert stack.allowed(role, "secretsmanager:GetSecretValue") == {API_TOKENS}
    assert stack.allowed(role, "kms:Decrypt") == {ref("aws_kms_key.totes.arn")}
    for other in ("task", "execution", "scheduler[0]", "slack_alerts[0]"):
        assert API_TOKENS not in stack.allowed(other, "secretsmanager:GetSecretValue"), other
    # the secret is encrypted with the stack's key; its value is never in Terraform
    secret = stack.resource("aws_secretsmanager_secret", "api_tokens")
    assert secret["kms_key_id"] == ref("aws_kms_key.totes.arn")
    for name, body in stack.of_type("aws_secretsmanager_secret_version").items():
        assert "aws_secretsmanager_secret.api_tokens" not in body["secret_id"], name
    # the outputs say where the API answers, where the tokens are and how to put one
    assert stack.outputs["payments_api_url"]["value"] == ref(
        'var.payments_api ? "https://${var.payments_api_domain_name}" : null'
    )
    secret_output = stack.outputs["payments_api_tokens_secret"]["value"]
    assert "aws_secretsmanager_secret.api_tokens[*]" in secret_output
    command = stack.outputs["payments_api_put_token_command"]["value"]
    assert "put-secret-value --secret-id ${aws_secretsmanager_secret.api_tokens[0]." in command
    assert "secrets.token_urlsafe(32)" in command


def check_payments_api_is_served_by_a_load_balancer_internal_unless_asked(stack: Stack) -> None:
    balancer = stack.resource("aws_lb", "payments_api")
    flag = stack.variables["payments_api_internet_facing"]
    assert flag["type"] == "bool" and flag["default"] is False
    assert balancer["internal"] == ref("!var.payments_api_internet_facing"), "internal or not"
    assert balancer["load_balancer_type"] == "application"
    assert balancer["drop_invalid_header_fields"] is True
    assert balancer["enable_deletion_protection"] == ref("!var.destroy_data_with_stack")
    assert balancer["subnets"] == ref("local.subnet_ids")
    # the service's task registers, by its address, in the group the HTTPS listener forwards to
    service = stack.resource("aws_ecs_service", "payments_api")
    container = payments_api_container(stack)
    port = ref("var.payments_api_port")
    assert container["portMappings"] == [{"containerPort": port, "protocol": "tcp"}]
    assert service["load_balancer"] == [
        {
            "target_group_arn": API_TARGETS,
            "container_name": container["name"],
            "container_port": port,
        }
    ]
    assert ref("aws_lb_listener.payments_api_https") in service["depends_on"]
    targets = stack.resource("aws_lb_target_group", "payments_api")
    assert targets["target_type"] == "ip" and targets["port"] == port
    assert targets["vpc_id"] == ref("data.aws_vpc.selected.id")
    (health,) = targets["health_check"]
    assert health["path"] == "/health", "the load balancer's health check would need a credential"
    # the API's name points at it
    record = stack.resource("aws_route53_record", "payments_api")
    assert record["zone_id"] == ref("var.payments_api_zone_id")
    assert record["name"] == ref("var.payments_api_domain_name") and record["type"] == "A"
    (alias,) = record["alias"]
    assert alias["name"] == ref("aws_lb.payments_api[0].dns_name")
    assert alias["zone_id"] == ref("aws_lb.payments_api[0].zone_id")
    # uvicorn takes the client's address from X-Forwarded-For only when the load balancer (an
    # address of the VPC) sent it: the API limits failed credentials per client address
    environment = {entry["name"]: entry["value"] for entry in container["environment"]}
    assert environment.get("FORWARDED_ALLOW_IPS") == ref("local.payments_api_proxies")
    proxies = stack.locals["payments_api_proxies"]
    assert "data.aws_vpc.selected.cidr_block" in proxies and '"*"' not in proxies
    with mock.patch.dict(os.environ, {"FORWARDED_ALLOW_IPS": "172.31.0.0/16"}):
        assert uvicorn.Config("app:app", log_config=None).forwarded_allow_ips == "172.31.0.0/16"


def check_https_listener_serves_the_validated_certificate_over_tls_1_2_or_later(
    stack: Stack,
) -> None:
    https = {
        name: body
        for name, body in stack.of_type("aws_lb_listener").items()
        if body.get("protocol") == "HTTPS"
    }
    for name, listener in https.items():
        policy = listener.get("ssl_policy", "ELBSecurityPolicy-2016-08")  # ELB's default: TLS 1.0
        assert TLS_1_2_OR_LATER.fullmatch(policy), f"listener {name} allows TLS before 1.2"
    (listener,) = [body for body in https.values() if body["load_balancer_arn"] == API_LB]
    assert listener["port"] == 443
    assert listener.get("certificate_arn") == ref(
        "aws_acm_certificate_validation.payments_api[0].certificate_arn"
    ), "the listener serves no certificate, or one before it is issued"
    assert listener["default_action"] == [{"type": "forward", "target_group_arn": API_TARGETS}]
    assert not stack.of_type("aws_lb_listener_certificate"), "a certificate besides the stack's"
    # the stack issues the certificate for the API's name, validated in the API's zone
    certificate = stack.resource("aws_acm_certificate", "payments_api")
    assert certificate["domain_name"] == ref("var.payments_api_domain_name")
    assert certificate["validation_method"] == "DNS"
    assert "subject_alternative_names" not in certificate  # one name: one validation record
    validation = stack.resource("aws_acm_certificate_validation", "payments_api")
    assert validation["certificate_arn"] == ref("aws_acm_certificate.payments_api[0].arn")
    assert validation["validation_record_fqdns"] == [
        ref("aws_route53_record.payments_api_validation[0].fqdn")
    ]
    record = stack.resource("aws_route53_record", "payments_api_validation")
    assert record["zone_id"] == ref("var.payments_api_zone_id")
    option = "tolist(aws_acm_certificate.payments_api[0].domain_validation_options)[0]"
    assert record["name"] == ref(f"{option}.resource_record_name")
    assert record["type"] == ref(f"{option}.resource_record_type")
    assert record["records"] == [ref(f"{option}.resource_record_value")]


def check_no_listener_on_plain_http_forwards(stack: Stack) -> None:
    plain = {
        name: body
        for name, body in stack.of_type("aws_lb_listener").items()
        if body.get("protocol", "HTTP") not in ("HTTPS", "TLS")
    }
    for name, listener in plain.items():
        for action in listener["default_action"]:
            assert action["type"] == "redirect", f"listener {name} answers plain HTTP: {action}"
            (redirect,) = action["redirect"]
            assert redirect["protocol"] == "HTTPS", f"listener {name} redirects to plain HTTP"
            assert redirect["port"] == "443" and redirect["status_code"] == "HTTP_301"
        rules = [
            rule_name
            for rule_name, rule in stack.of_type("aws_lb_listener_rule").items()
            if f"aws_lb_listener.{name}" in rule["listener_arn"]
        ]
        assert not rules, f"listener {name} on plain HTTP has rules: {rules}"
    # a client that types http:// is sent to HTTPS rather than refused
    assert [
        listener["port"] for listener in plain.values() if listener["load_balancer_arn"] == API_LB
    ] == [80]


def check_no_task_port_is_open_to_a_cidr(stack: Stack) -> None:
    for name, group in stack.of_type("aws_security_group").items():
        assert "ingress" not in group, f"security group {name} has inline ingress rules"
    for name, rule in stack.of_type("aws_security_group_rule").items():
        assert rule["type"] != "ingress", f"ingress rule {name}: use aws_vpc_security_group_*"
    # only the load balancer's group admits addresses; every other one admits groups
    ingress = stack.of_type("aws_vpc_security_group_ingress_rule")
    for name, rule in ingress.items():
        if {"cidr_ipv4", "cidr_ipv6", "prefix_list_id"} & rule.keys():
            assert rule["security_group_id"] == API_LB_GROUP, f"{name} opens a port to a CIDR"
    # the API task admits its port from the load balancer's group, and nothing else
    to_task = [
        {key: value for key, value in rule.items() if key not in ("count", "description")}
        for rule in ingress.values()
        if rule["security_group_id"] == API_TASK_GROUP
    ]
    port = ref("var.payments_api_port")
    assert to_task == [
        {
            "security_group_id": API_TASK_GROUP,
            "ip_protocol": "tcp",
            "from_port": port,
            "to_port": port,
            "referenced_security_group_id": API_LB_GROUP,
        }
    ]
    service = stack.resource("aws_ecs_service", "payments_api")
    assert service["network_configuration"][0]["security_groups"] == [API_TASK_GROUP]
    assert stack.resource("aws_lb", "payments_api")["security_groups"] == [API_LB_GROUP]
    # the load balancer admits the allowed CIDRs on 443 and 80, and reaches only the task's port
    from_clients = [rule for rule in ingress.values() if rule["security_group_id"] == API_LB_GROUP]
    assert [rule["for_each"] for rule in from_clients] == [ref("local.payments_api_lb_ingress")]
    clients = stack.locals["payments_api_lb_ingress"]
    assert 'setproduct(["443", "80"], var.payments_api_allowed_cidrs)' in clients
    egress = stack.of_type("aws_vpc_security_group_egress_rule")
    onward = [rule for rule in egress.values() if rule["security_group_id"] == API_LB_GROUP]
    assert [
        (rule.get("referenced_security_group_id"), rule["from_port"], rule["to_port"])
        for rule in onward
    ] == [(API_TASK_GROUP, port, port)]


def check_load_balancer_logs_to_its_own_bucket_which_elb_may_write(stack: Stack) -> None:
    balancer = stack.resource("aws_lb", "payments_api")
    assert balancer.get("access_logs") == [{"bucket": ref(f"{API_LOGS}.id"), "enabled": True}]
    # the load balancer checks when it is created that it may write there
    assert ref("aws_s3_bucket_policy.payments_api_logs") in balancer["depends_on"]
    bucket = stack.resource("aws_s3_bucket", "payments_api_logs")
    assert bucket["bucket"] == "${var.name}-api-logs-${local.bucket_suffix}"
    assert bucket["force_destroy"] == ref("var.destroy_data_with_stack")
    blocked = stack.resource("aws_s3_bucket_public_access_block", "payments_api_logs")
    flags = ("block_public_acls", "block_public_policy", "ignore_public_acls")
    assert all(blocked[flag] is True for flag in (*flags, "restrict_public_buckets"))
    encryption = "aws_s3_bucket_server_side_encryption_configuration"
    (rule,) = stack.resource(encryption, "payments_api_logs")["rule"]
    assert rule["apply_server_side_encryption_by_default"] == [{"sse_algorithm": "AES256"}], (
        "ALB access logs are delivered only to a bucket encrypted with S3's own keys"
    )
    (rule,) = stack.resource("aws_s3_bucket_lifecycle_configuration", "payments_api_logs")["rule"]
    assert rule["expiration"] == [{"days": ref("var.log_retention_days")}]
    # the policy lets ELB write the logs, as the service in newer regions and as the region's
    # ELB account in older ones, and refuses plain HTTP
    policy = stack.resource("aws_s3_bucket_policy", "payments_api_logs")
    assert policy["bucket"] == ref(f"{API_LOGS}.id")
    assert policy["policy"] == ref("data.aws_iam_policy_document.payments_api_logs[0].json")
    document = statements(stack.data[("aws_iam_policy_document", "payments_api_logs")])
    logs = ref(f"{API_LOGS}.arn") + "/AWSLogs/${local.account_id}/*"
    allowed = [statement for statement in document if statement.get("effect", "Allow") == "Allow"]
    for statement in allowed:
        assert statement["actions"] == ["s3:PutObject"], statement["sid"]
        assert statement["resources"] == [logs], statement["sid"]
    writers = {
        (principal["type"], identifier, str(statement.get("for_each")))
        for statement in allowed
        for principal in statement["principals"]
        for identifier in principal["identifiers"]
    }
    assert writers == {
        ("Service", "logdelivery.elasticloadbalancing.amazonaws.com", "None"),
        ("AWS", ref("statement.value.arn"), ref("data.aws_elb_service_account.current")),
    }
    elb_account = stack.data[("aws_elb_service_account", "current")]
    assert "contains(local.elb_account_regions, var.region)" in elb_account["count"]
    regions = stack.locals["elb_account_regions"]
    assert {stack.variables["region"]["default"], "us-east-1", "ap-southeast-3"} <= set(regions)
    assert not set(NEWER_REGIONS) & set(regions), "a newer region has no ELB account"
    (denied,) = [statement for statement in document if statement.get("effect") == "Deny"]
    assert denied["condition"][0]["variable"] == "aws:SecureTransport"


SLACK_GATED = ref("var.slack_alerts ? 1 : 0")
SLACK_SECRET = ref("aws_secretsmanager_secret.slack_webhook[0].arn")


def check_slack_is_optional_and_subscribes_to_the_alerts_topic(stack: Stack) -> None:
    assert stack.variables["slack_alerts"]["default"] is False
    subscription = stack.resource("aws_sns_topic_subscription", "slack")
    function = stack.resource("aws_lambda_function", "slack_alerts")
    permission = stack.resource("aws_lambda_permission", "slack_alerts")
    for type_, name in (
        ("aws_sns_topic_subscription", "slack"),
        ("aws_lambda_function", "slack_alerts"),
        ("aws_lambda_permission", "slack_alerts"),
        ("aws_secretsmanager_secret", "slack_webhook"),
        ("aws_iam_role", "slack_alerts"),
        ("aws_iam_role_policy", "slack_alerts"),
    ):
        assert stack.resource(type_, name).get("count") == SLACK_GATED, f"{type_}.{name}"
    assert subscription["topic_arn"] == ref("aws_sns_topic.alerts.arn")
    assert subscription["protocol"] == "lambda"
    assert subscription["endpoint"] == ref("aws_lambda_function.slack_alerts[0].arn")
    # SNS may invoke it, and only from the alerts topic
    assert permission["principal"] == "sns.amazonaws.com"
    assert permission["source_arn"] == ref("aws_sns_topic.alerts.arn")
    assert permission["function_name"] == ref("aws_lambda_function.slack_alerts[0].function_name")
    # the zip holds the one module, whose handler the function names, and which imports only
    # what the Lambda runtime has
    archive = stack.data[("archive_file", "slack_alerts")]
    assert function["filename"] == ref("data.archive_file.slack_alerts[0].output_path")
    module = TERRAFORM / archive["source_file"].removeprefix("${path.module}/")
    assert module.resolve() == REPO / "ingestion" / "ops" / "slack.py", module
    assert function["handler"] == f"{module.stem}.handler" and function["runtime"] == "python3.12"
    tree = ast.parse(module.read_text())
    imported = {
        name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for name in (
            [alias.name for alias in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
        )
    }
    assert imported <= sys.stdlib_module_names | {"boto3"}, imported
    assert any(
        isinstance(node, ast.FunctionDef) and node.name == "handler" for node in tree.body
    ), "the module has no handler"


def check_slack_reads_only_its_own_secret(stack: Stack) -> None:
    function = stack.resource("aws_lambda_function", "slack_alerts")
    assert function["role"] == ref("aws_iam_role.slack_alerts[0].arn")
    (environment,) = function["environment"]
    assert environment["variables"] == {SECRET_VARIABLE: SLACK_SECRET}
    role = "slack_alerts[0]"
    actions = {
        action for statement in stack.role_statements(role) for action in statement["actions"]
    }
    assert actions == {
        "secretsmanager:GetSecretValue",
        "kms:Decrypt",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    }
    assert stack.allowed(role, "secretsmanager:GetSecretValue") == {SLACK_SECRET}
    assert stack.allowed(role, "kms:Decrypt") == {ref("aws_kms_key.totes.arn")}
    # it writes to the log group it logs to, and to no other
    (logs,) = function["logging_config"]
    group = logs["log_group"].removesuffix(".name}")
    assert stack.allowed(role, "logs:PutLogEvents") == {group + ".arn}:*"}
    assert logs["application_log_level"] == "INFO"  # what the subscriber's tests capture
    for other in ("task", "execution", "scheduler[0]"):
        assert SLACK_SECRET not in stack.allowed(other, "secretsmanager:GetSecretValue"), other


def check_slack_webhook_has_no_value_in_terraform(stack: Stack) -> None:
    secret = stack.resource("aws_secretsmanager_secret", "slack_webhook")
    assert secret["kms_key_id"] == ref("aws_kms_key.totes.arn")
    values = [
        name
        for name, body in stack.of_type("aws_secretsmanager_secret_version").items()
        if "aws_secretsmanager_secret.slack_webhook" in body["secret_id"]
    ]
    assert values == [], "the webhook URL would be in Terraform's files and state"
    for name, body in stack.variables.items():
        if "slack" in name or "webhook" in name:
            assert body["type"] == "bool", f"variable {name} could hold the webhook URL"


CHECKS: list[Callable[[Stack], None]] = [
    check_schedule_runs_the_task,
    check_service_runs_one_pipeline_task_at_a_time,
    check_continuous_task_runs_every_interval_and_stops_between_stages,
    check_a_stuck_service_alerts,
    check_task_reaches_exactly_three_buckets_and_two_secrets,
    check_container_speaks_the_configuration_contract,
    check_failures_and_alarms_reach_the_topic,
    check_alerts_are_mailed,
    check_buckets_are_private_encrypted_and_kept,
    check_no_secret_value_reaches_state,
    check_payments_api_is_optional_and_needs_a_name_and_a_zone,
    check_payments_api_reads_the_warehouse_and_only_its_token_secret,
    check_payments_api_is_served_by_a_load_balancer_internal_unless_asked,
    check_https_listener_serves_the_validated_certificate_over_tls_1_2_or_later,
    check_no_listener_on_plain_http_forwards,
    check_no_task_port_is_open_to_a_cidr,
    check_load_balancer_logs_to_its_own_bucket_which_elb_may_write,
    check_slack_is_optional_and_subscribes_to_the_alerts_topic,
    check_slack_reads_only_its_own_secret,
    check_slack_webhook_has_no_value_in_terraform,
]


def metric_names_emitted_by_a_run() -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    """(metric, dimensions) pairs of a failed and a caught-up run, as the pipeline logs them."""
    now = datetime.now(UTC)
    pairs = set()
    for status in ("failed", "succeeded"):
        run = FinishedRun(
            run_id="r",
            status=status,
            exit_code=int(status == "failed"),
            finished_at=now,
            seconds=1.0,
            stage_seconds={"extract": 1.0},
            freshness_lag_seconds=1.0,
            newest_fact_age_seconds=1.0,
            tables={"sales_order": TableRow()},
        )
        for document in run_metrics("run", run):
            (directive,) = document["_aws"]["CloudWatchMetrics"]
            assert directive["Namespace"] == NAMESPACE
            dimensions = tuple(
                sorted((name, document[name]) for name in directive["Dimensions"][0])
            )
            pairs |= {(metric["Name"], dimensions) for metric in directive["Metrics"]}
    return pairs


# --- the tests -------------------------------------------------------------------------------


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__[len("check_") :])
def test_the_stack_is_wired(check: Callable[[Stack], None]) -> None:
    check(Stack.parse(TERRAFORM))


def test_every_variable_and_output_says_what_it_is_for() -> None:
    for folder in (TERRAFORM, TERRAFORM / "bootstrap", TERRAFORM / "modules" / "private_bucket"):
        stack = Stack.parse(folder)
        for kind, blocks in (("variable", stack.variables), ("output", stack.outputs)):
            for name, body in blocks.items():
                assert body.get("description"), f"{folder.name}: {kind} {name} has no description"


# One piece of wiring removed or bent per case: (file, text as written, replacement).
BUCKET_OBJECTS = '      "${module.processed_bucket.arn}/${local.processed_prefix}/*",\n'
FRESHNESS_ACTIONS = '  treat_missing_data  = "breaching"\n  alarm_actions       = '
TASK_FAILED_TARGET = "  rule = aws_cloudwatch_event_rule.task_failed.name\n  arn  = "
SERVICE_RULE_TARGET = "  rule = aws_cloudwatch_event_rule.service_impaired[0].name\n  arn  = "
SERVICE_NETWORK = "  wait_for_steady_state = false\n\n  network_configuration {\n"
API_REDIRECT = (
    '    type = "redirect"\n    redirect {\n      protocol    = "HTTPS"\n'
    '      port        = "443"\n      status_code = "HTTP_301"\n    }\n'
)
API_CERTIFICATE_HEADER = 'resource "aws_acm_certificate" "payments_api" {\n'
API_TASK_EGRESS_HEADER = 'resource "aws_vpc_security_group_egress_rule" "payments_api" {\n'
BREAKS = {
    "schedule targets another task": (
        "schedule.tf",
        "task_definition_arn = aws_ecs_task_definition.pipeline.arn",
        'task_definition_arn = "arn:aws:ecs:eu-west-2:111111111111:task-definition/other:1"',
    ),
    "schedule has no dead-letter queue": (
        "schedule.tf",
        "    dead_letter_config {\n      arn = aws_sqs_queue.schedule_dead_letters[0].arn\n    }\n",
        "",
    ),
    "task role reads a third bucket": (
        "iam.tf",
        BUCKET_OBJECTS,
        BUCKET_OBJECTS + '      "arn:aws:s3:::another/*",\n',
    ),
    "task role may write the delivery partner's files": (
        "deliveries.tf",
        '    actions   = ["s3:GetObject"]',
        '    actions   = ["s3:GetObject", "s3:DeleteObject"]',
    ),
    "container misses the deliveries prefix": (
        "task.tf",
        '      { name = "TOTES_DELIVERIES_URL", value = local.deliveries_url },\n',
        "",
    ),
    "execution role cannot read the warehouse secret": (
        "iam.tf",
        "      aws_secretsmanager_secret.warehouse_url.arn,\n",
        "",
    ),
    "container misses the warehouse secret": (
        "task.tf",
        '      { name = "TOTES_WAREHOUSE_URL", '
        "valueFrom = aws_secretsmanager_secret.warehouse_url.arn },\n",
        "",
    ),
    "failure rule targets the queue": (
        "alerts.tf",
        TASK_FAILED_TARGET + "aws_sns_topic.alerts.arn",
        TASK_FAILED_TARGET + "aws_sqs_queue.schedule_dead_letters[0].arn",
    ),
    "freshness alarm alerts no one": (
        "alerts.tf",
        FRESHNESS_ACTIONS + "[aws_sns_topic.alerts.arn]",
        FRESHNESS_ACTIONS + "[]",
    ),
    "alarm watches a metric no run emits": (
        "alerts.tf",
        '  metric_name         = "RunFailed"',
        '  metric_name         = "RunsFailed"',
    ),
    "subscription is not email": ("alerts.tf", '  protocol  = "email"', '  protocol  = "sqs"'),
    "lake variable misspelt": ("task.tf", '"TOTES_LAKE_URL"', '"TOTES_LAKE"'),
    "service may run two tasks during a deploy": (
        "schedule.tf",
        "deployment_maximum_percent         = 100",
        "deployment_maximum_percent         = 200",
    ),
    "service keeps the old task until the new one runs": (
        "schedule.tf",
        "deployment_minimum_healthy_percent = 0",
        "deployment_minimum_healthy_percent = 100",
    ),
    "service in scheduled mode too": (
        "schedule.tf",
        "nothing inbound\n  count = local.continuous ? 1 : 0\n",
        "nothing inbound\n",
    ),
    "schedule in continuous mode too": (
        "schedule.tf",
        "enough\n  count = local.continuous ? 0 : 1\n",
        "enough\n",
    ),
    "service runs another task": (
        "schedule.tf",
        "  task_definition = aws_ecs_task_definition.pipeline.arn\n",
        "  task_definition = aws_ecs_task_definition.payments_api[0].arn\n",
    ),
    "service runs without the task's security group": (
        "schedule.tf",
        SERVICE_NETWORK + "    subnets          = local.subnet_ids\n"
        "    security_groups  = [aws_security_group.task.id]\n",
        SERVICE_NETWORK + "    subnets          = local.subnet_ids\n    security_groups  = []\n",
    ),
    "continuous task runs once": (
        "task.tf",
        '["run", "--every", tostring(var.run_every_seconds)]',
        '["run"]',
    ),
    "container killed 30 s after a stop": ("task.tf", "    stopTimeout            = 120\n", ""),
    "key check every 12 runs of 30 s": (
        "task.tf",
        "value = tostring(local.key_check_every)",
        'value = "12"',
    ),
    "hand-run task runs until stopped": (
        "outputs.tf",
        "\"--overrides '",
        "\"--tags '",
    ),
    "topic refuses the service rule": (
        "alerts.tf",
        ", aws_cloudwatch_event_rule.service_impaired[*].arn)",
        ")",
    ),
    "service rule alerts no one": (
        "alerts.tf",
        SERVICE_RULE_TARGET + "aws_sns_topic.alerts.arn",
        SERVICE_RULE_TARGET + "aws_sqs_queue.schedule_dead_letters[0].arn",
    ),
    "failed-task rule ignores the service's tasks": (
        "alerts.tf",
        '      lastStatus = ["STOPPED"]\n',
        '      lastStatus = ["STOPPED"]\n      startedBy  = [{ prefix = "events-scheduler" }]\n',
    ),
    "payments API gets the source secret": (
        "payments_api.tf",
        "    secrets = [\n",
        '    secrets = [\n      { name = "TOTES_SOURCE_URL", '
        "valueFrom = aws_secretsmanager_secret.source_url.arn },\n",
    ),
    "payments API on by default": (
        "variables.tf",
        'payments_api_zone_id."\n  type        = bool\n  default     = false',
        'payments_api_zone_id."\n  type        = bool\n  default     = true',
    ),
    "payments API runs without a name": (
        "variables.tf",
        'condition     = !var.payments_api || can(regex("^([a-z0-9]',
        'condition     = true || can(regex("^([a-z0-9]',
    ),
    "payments API's zone needed without it": (
        "variables.tf",
        'condition     = !var.payments_api || can(regex("^Z',
        'condition     = can(regex("^Z',
    ),
    "payments API's certificate issued without it": (
        "payments_api.tf",
        'resource "aws_acm_certificate" "payments_api" {\n  count = var.payments_api ? 1 : 0\n',
        'resource "aws_acm_certificate" "payments_api" {\n',
    ),
    "HTTP listener forwards": (
        "payments_api.tf",
        API_REDIRECT,
        '    type             = "forward"\n'
        "    target_group_arn = aws_lb_target_group.payments_api[0].arn\n",
    ),
    "HTTP listener redirects to plain HTTP": (
        "payments_api.tf",
        '      protocol    = "HTTPS"\n',
        '      protocol    = "HTTP"\n',
    ),
    "HTTP listener has a rule that forwards": (
        "payments_api.tf",
        API_CERTIFICATE_HEADER,
        'resource "aws_lb_listener_rule" "health" {\n'
        "  listener_arn = aws_lb_listener.payments_api_http[0].arn\n"
        '  action {\n    type             = "forward"\n'
        "    target_group_arn = aws_lb_target_group.payments_api[0].arn\n  }\n"
        '  condition {\n    path_pattern {\n      values = ["/health"]\n    }\n  }\n}\n\n'
        + API_CERTIFICATE_HEADER,
    ),
    "HTTPS listener without the certificate": (
        "payments_api.tf",
        "  certificate_arn   = aws_acm_certificate_validation.payments_api[0].certificate_arn\n",
        "",
    ),
    "HTTPS listener serves the certificate before it is issued": (
        "payments_api.tf",
        "certificate_arn   = aws_acm_certificate_validation.payments_api[0].certificate_arn",
        "certificate_arn   = aws_acm_certificate.payments_api[0].arn",
    ),
    "HTTPS listener allows TLS 1.0": (
        "payments_api.tf",
        'ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"',
        'ssl_policy        = "ELBSecurityPolicy-2016-08"',
    ),
    "certificate validated in another zone": (
        "payments_api.tf",
        "  zone_id         = var.payments_api_zone_id\n",
        '  zone_id         = "Z0THERZONE"\n',
    ),
    "load balancer internet-facing always": (
        "payments_api.tf",
        "internal                   = !var.payments_api_internet_facing",
        "internal                   = false",
    ),
    "load balancer passes invalid headers on": (
        "payments_api.tf",
        "drop_invalid_header_fields = true",
        "drop_invalid_header_fields = false",
    ),
    "load balancer checks the health of a route that needs a credential": (
        "payments_api.tf",
        '    path                = "/health"',
        '    path                = "/payments"',
    ),
    "API task port open to a CIDR": (
        "payments_api.tf",
        "  referenced_security_group_id = aws_security_group.payments_api_lb[0].id\n",
        '  cidr_ipv4                    = "10.0.0.0/8"\n',
    ),
    "API task port open to the allowed CIDRs too": (
        "payments_api.tf",
        API_TASK_EGRESS_HEADER,
        'resource "aws_vpc_security_group_ingress_rule" "payments_api_direct" {\n'
        "  for_each = toset(var.payments_api_allowed_cidrs)\n\n"
        "  security_group_id = aws_security_group.payments_api[0].id\n"
        '  ip_protocol       = "tcp"\n'
        "  from_port         = var.payments_api_port\n"
        "  to_port           = var.payments_api_port\n"
        "  cidr_ipv4         = each.value\n}\n\n" + API_TASK_EGRESS_HEADER,
    ),
    "load balancer open on every port": (
        "payments_api.tf",
        'setproduct(["443", "80"], var.payments_api_allowed_cidrs)',
        'setproduct(["443", "80", "8000"], var.payments_api_allowed_cidrs)',
    ),
    "access logs off": (
        "payments_api.tf",
        "    bucket  = aws_s3_bucket.payments_api_logs[0].id\n    enabled = true\n",
        "    bucket  = aws_s3_bucket.payments_api_logs[0].id\n    enabled = false\n",
    ),
    "log bucket encrypted with the stack's key": (
        "payments_api.tf",
        'sse_algorithm = "AES256"',
        'sse_algorithm = "aws:kms"',
    ),
    "log bucket lets CloudWatch's log delivery write, not ELB's": (
        "payments_api.tf",
        'identifiers = ["logdelivery.elasticloadbalancing.amazonaws.com"]',
        'identifiers = ["delivery.logs.amazonaws.com"]',
    ),
    "log bucket refuses the ELB account of older regions": (
        "payments_api.tf",
        "    for_each = data.aws_elb_service_account.current\n",
        "    for_each = []\n",
    ),
    "API task misses the token secret": (
        "payments_api.tf",
        '      { name = "TOTES_API_TOKENS_SECRET", '
        "value = aws_secretsmanager_secret.api_tokens[0].arn },\n",
        "",
    ),
    "API task role reads the warehouse secret too": (
        "payments_api.tf",
        "    resources = [aws_secretsmanager_secret.api_tokens[0].arn]\n",
        "    resources = [\n      aws_secretsmanager_secret.api_tokens[0].arn,\n"
        "      aws_secretsmanager_secret.warehouse_url.arn,\n    ]\n",
    ),
    "API trusts X-Forwarded-For from anyone": (
        "payments_api.tf",
        "value = local.payments_api_proxies }",
        'value = "*" }',
    ),
    "Slack on by default": (
        "variables.tf",
        'slack_webhook_secret."\n  type        = bool\n  default     = false',
        'slack_webhook_secret."\n  type        = bool\n  default     = true',
    ),
    "Slack subscribed whether enabled or not": (
        "slack.tf",
        'resource "aws_sns_topic_subscription" "slack" {\n  count = var.slack_alerts ? 1 : 0\n',
        'resource "aws_sns_topic_subscription" "slack" {\n',
    ),
    "Slack zip holds another module": (
        "slack.tf",
        '"${path.module}/../ingestion/ops/slack.py"',
        '"${path.module}/../ingestion/ops/alerts.py"',
    ),
    "Slack role reads the source secret too": (
        "slack.tf",
        "    resources = [aws_secretsmanager_secret.slack_webhook[0].arn]\n",
        "    resources = [\n      aws_secretsmanager_secret.slack_webhook[0].arn,\n"
        "      aws_secretsmanager_secret.source_url.arn,\n    ]\n",
    ),
    "Slack webhook URL in Terraform": (
        "slack.tf",
        '\ndata "archive_file" "slack_alerts" {\n',
        '\nvariable "slack_webhook_url" {\n  type = string\n}\n\n'
        'resource "aws_secretsmanager_secret_version" "slack_webhook" {\n'
        "  count         = var.slack_alerts ? 1 : 0\n"
        "  secret_id     = aws_secretsmanager_secret.slack_webhook[0].id\n"
        "  secret_string = var.slack_webhook_url\n}\n"
        '\ndata "archive_file" "slack_alerts" {\n',
    ),
}


def checks_noticing(
    case: str,
    breaks: dict[str, tuple[str, str, str]],
    checks: Sequence[Callable[[Any], None]],
    parse: Callable[[Path], Stack],
    tmp_path: Path,
) -> list[str]:
    """The names of the `checks` that fail on a copy of the stack broken as `breaks[case]` says."""
    file, written, broken = breaks[case]
    copy = tmp_path / "terraform"
    shutil.copytree(TERRAFORM, copy, ignore=shutil.ignore_patterns(".terraform"))
    text = (copy / file).read_text()
    assert text.count(written) == 1, f"{file} no longer holds the text this case breaks"
    (copy / file).write_text(text.replace(written, broken))
    stack = parse(copy)
    failed = []
    for check in checks:
        try:
            check(stack)
        except AssertionError:
            failed.append(check.__name__)
    assert failed, f"no check noticed: {case}"
    print(f"{case}: caught by {', '.join(failed)}")
    return failed


# The check that must be among those noticing a case, where it matters which one does.
NOTICED_BY: dict[str, Callable[[Stack], None]] = {
    "payments API runs without a name": check_payments_api_is_optional_and_needs_a_name_and_a_zone,
    "payments API's zone needed without it": (
        check_payments_api_is_optional_and_needs_a_name_and_a_zone
    ),
    "payments API's certificate issued without it": (
        check_payments_api_is_optional_and_needs_a_name_and_a_zone
    ),
    "HTTP listener forwards": check_no_listener_on_plain_http_forwards,
    "HTTP listener redirects to plain HTTP": check_no_listener_on_plain_http_forwards,
    "HTTP listener has a rule that forwards": check_no_listener_on_plain_http_forwards,
    "HTTPS listener without the certificate": (
        check_https_listener_serves_the_validated_certificate_over_tls_1_2_or_later
    ),
    "HTTPS listener serves the certificate before it is issued": (
        check_https_listener_serves_the_validated_certificate_over_tls_1_2_or_later
    ),
    "HTTPS listener allows TLS 1.0": (
        check_https_listener_serves_the_validated_certificate_over_tls_1_2_or_later
    ),
    "certificate validated in another zone": (
        check_https_listener_serves_the_validated_certificate_over_tls_1_2_or_later
    ),
    "load balancer internet-facing always": (
        check_payments_api_is_served_by_a_load_balancer_internal_unless_asked
    ),
    "load balancer passes invalid headers on": (
        check_payments_api_is_served_by_a_load_balancer_internal_unless_asked
    ),
    "load balancer checks the health of a route that needs a credential": (
        check_payments_api_is_served_by_a_load_balancer_internal_unless_asked
    ),
    "API task port open to a CIDR": check_no_task_port_is_open_to_a_cidr,
    "API task port open to the allowed CIDRs too": check_no_task_port_is_open_to_a_cidr,
    "load balancer open on every port": check_no_task_port_is_open_to_a_cidr,
    "access logs off": check_load_balancer_logs_to_its_own_bucket_which_elb_may_write,
    "log bucket encrypted with the stack's key": (
        check_load_balancer_logs_to_its_own_bucket_which_elb_may_write
    ),
    "log bucket lets CloudWatch's log delivery write, not ELB's": (
        check_load_balancer_logs_to_its_own_bucket_which_elb_may_write
    ),
    "log bucket refuses the ELB account of older regions": (
        check_load_balancer_logs_to_its_own_bucket_which_elb_may_write
    ),
    "API task misses the token secret": (
        check_payments_api_reads_the_warehouse_and_only_its_token_secret
    ),
    "API task role reads the warehouse secret too": (
        check_payments_api_reads_the_warehouse_and_only_its_token_secret
    ),
    "API trusts X-Forwarded-For from anyone": (
        check_payments_api_is_served_by_a_load_balancer_internal_unless_asked
    ),
    "service may run two tasks during a deploy": check_service_runs_one_pipeline_task_at_a_time,
    "service keeps the old task until the new one runs": (
        check_service_runs_one_pipeline_task_at_a_time
    ),
    "service in scheduled mode too": check_service_runs_one_pipeline_task_at_a_time,
    "schedule in continuous mode too": check_schedule_runs_the_task,
    "service runs another task": check_service_runs_one_pipeline_task_at_a_time,
    "service runs without the task's security group": (
        check_service_runs_one_pipeline_task_at_a_time
    ),
    "continuous task runs once": check_continuous_task_runs_every_interval_and_stops_between_stages,
    "container killed 30 s after a stop": (
        check_continuous_task_runs_every_interval_and_stops_between_stages
    ),
    "key check every 12 runs of 30 s": (
        check_continuous_task_runs_every_interval_and_stops_between_stages
    ),
    "hand-run task runs until stopped": (
        check_continuous_task_runs_every_interval_and_stops_between_stages
    ),
    "topic refuses the service rule": check_failures_and_alarms_reach_the_topic,
    "service rule alerts no one": check_a_stuck_service_alerts,
    "failed-task rule ignores the service's tasks": check_a_stuck_service_alerts,
}


@pytest.mark.parametrize("case", list(BREAKS))
def test_a_check_fails_when_a_piece_of_wiring_is_broken(case: str, tmp_path: Path) -> None:
    failed = checks_noticing(case, BREAKS, CHECKS, Stack.parse, tmp_path)
    if case in NOTICED_BY:
        assert NOTICED_BY[case].__name__ in failed, f"{case}: not noticed by its own check"


# --- the Glue catalog and Athena (catalog.tf, modules/zone_tables) ----------------------------
# Which tables and columns the module computes, and whether they match the files of a real run,
# is tests/test_catalog.py's part; these checks hold the wiring around it.


@dataclass
class CatalogStack(Stack):
    """A stack that also knows its folder, so a check can read its modules."""

    folder: Path = TERRAFORM

    @classmethod
    def parse(cls, folder: Path) -> CatalogStack:
        return cls(**vars(Stack.parse(folder)), folder=folder)

    def module_hcl(self, name: str) -> dict[str, Any]:
        """The parsed HCL of the local module `module.<name>` uses: locals and outputs merged."""
        folder = self.folder / self.modules[name]["source"]
        return {
            "locals": _locals(folder),
            "outputs": {
                name: body
                for path in sorted(folder.glob("*.tf"))
                for entry in _parsed(path).get("output", [])
                for name, body in entry.items()
            },
        }


ZONES = {"lake", "processed"}
WORKGROUP = ref("aws_athena_workgroup.analysts.arn")
ATHENA_CATALOG = ":datacatalog/AwsDataCatalog"


def check_glue_tables_are_the_zone_modules_tables(stack: CatalogStack) -> None:
    module = stack.modules["zone_tables"]
    assert module["source"] == "./modules/zone_tables"
    assert module["repo_root"] == "${path.module}/.."
    assert module["zone_urls"] == {
        "lake": ref("local.lake_url"),
        "processed": ref("local.processed_url"),
    }
    assert module["first_day"] == ref("var.catalog_first_day")
    # it reads the contracts themselves, where they are
    for dataset in module["lake_datasets"].values():
        for contract in dataset.get("contracts", []):
            assert (REPO / contract).is_file(), contract
    assert list(REPO.glob(module["mart_files"])), f"no file matches {module['mart_files']}"
    # and every Glue table is one of its tables, as it computed it
    assert "module.zone_tables.tables" in stack.locals["catalog_tables"]
    table = stack.resource("aws_glue_catalog_table", "zone")
    assert table["for_each"] == ref("local.catalog_tables")
    assert table["database_name"] == ref("aws_glue_catalog_database.zone[each.value.zone].name")
    assert table["table_type"] == "EXTERNAL_TABLE"
    assert table["parameters"] == ref("each.value.parameters")
    (storage,) = table["storage_descriptor"]
    assert storage["location"] == ref("each.value.location")
    assert storage["input_format"].endswith(".parquet.MapredParquetInputFormat")
    assert storage["ser_de_info"][0]["serialization_library"].endswith("ParquetHiveSerDe")
    (columns,) = [block["columns"] for block in storage["dynamic"]]
    assert columns["for_each"] == ref("each.value.columns")
    assert columns["content"][0]["type"] == ref("columns.value.type")
    (keys,) = [block["partition_keys"] for block in table["dynamic"]]
    assert keys["for_each"] == ref("each.value.partition_keys")
    assert keys["content"][0]["name"] == ref("partition_keys.value.name")
    # a database per zone the module knows
    database = stack.resource("aws_glue_catalog_database", "zone")
    assert set(database["for_each"]) == ZONES
    assert set(stack.module_hcl("zone_tables")["locals"]["zones"]) == ZONES


def check_every_partition_is_projected_where_the_zones_put_it(stack: CatalogStack) -> None:
    from ingestion.export.processed import PARTITION_COLUMN
    from ingestion.extract.fx import FIRST_RATE_DAY
    from ingestion.lake.layout import LAYOUT

    module = stack.modules["zone_tables"]
    # the partitions are the ones the writers make
    assert LAYOUT.startswith(f"{{table_name}}/{module['lake_partition']}={{")
    assert module["fact_partition"] == PARTITION_COLUMN
    hcl = stack.module_hcl("zone_tables")
    assert hcl["locals"]["load_day"]["name"] == ref("var.lake_partition")
    # a partitioned table is projected: one day folder per day, from the first day to today
    tables = hcl["outputs"]["tables"]["value"]
    for piece in (
        "length(table.partition_keys) == 0 ? {} :",
        '"projection.enabled" = "true"',
        '"storage.location.template" = join("/", concat(["${var.zone_urls[zone]}/${table.path}"],'
        ' [for key in table.partition_keys : "${key.name}=$${${key.name}}"], [""]))',
        "[for key in table.partition_keys : {",
        '"projection.${key.name}.type" = "date"',
        '"projection.${key.name}.format" = "yyyy-MM-dd"',
        '"projection.${key.name}.range" = "${var.first_day},NOW"',
        'location = "${var.zone_urls[zone]}/${table.path}/"',
    ):
        assert piece in tables, f"the module's tables lack: {piece}"
    first_day = stack.variables["catalog_first_day"]["default"]
    assert first_day <= FIRST_RATE_DAY.isoformat(), "days before it would be invisible to Athena"


def check_workgroup_enforces_encrypted_results_and_a_scan_limit(stack: CatalogStack) -> None:
    (workgroup,) = stack.of_type("aws_athena_workgroup").values()
    (configuration,) = workgroup["configuration"]
    assert configuration["enforce_workgroup_configuration"] is True
    assert configuration.get("bytes_scanned_cutoff_per_query") == ref(
        "var.athena_scan_limit_mb * 1024 * 1024"
    )
    limit = stack.variables["athena_scan_limit_mb"]
    assert 10 <= limit["default"] <= 10 * 1024 and limit["validation"]
    (results,) = configuration["result_configuration"]
    assert results["output_location"].startswith(
        f"s3://{ref('module.athena_results_bucket.bucket')}/"
    )
    assert results["encryption_configuration"] == [
        {"encryption_option": "SSE_KMS", "kms_key_arn": ref("aws_kms_key.totes.arn")}
    ]
    # the results bucket is a private bucket of the stack (the module is checked above)
    bucket = stack.modules["athena_results_bucket"]
    assert bucket["source"] == "./modules/private_bucket"
    assert bucket["kms_key_arn"] == ref("aws_kms_key.totes.arn")


def check_analyst_queries_through_the_workgroup_only(stack: CatalogStack) -> None:
    statements = stack.role_statements("analyst")
    for statement in statements:
        assert statement.get("effect", "Allow") == "Allow"
        assert statement["resources"] != ["*"], statement
        for action in statement["actions"]:
            assert action != "*" and not action.endswith(":*"), action
    athena = {a for s in statements for a in s["actions"] if a.startswith("athena:")}
    for action in athena:
        resources = stack.allowed("analyst", action)
        assert resources == {WORKGROUP} or all(r.endswith(ATHENA_CATALOG) for r in resources)
    for action in ("StartQueryExecution", "GetQueryResults", "StopQueryExecution"):
        assert stack.allowed("analyst", f"athena:{action}") == {WORKGROUP}, action
    (assume,) = stack.data[("aws_iam_policy_document", "analyst_assume")]["statement"]
    (principal,) = assume["principals"]
    assert principal["type"] == "AWS" and '"*"' not in principal["identifiers"]
    assert (
        ":root" in principal["identifiers"] and "var.analyst_principals" in principal["identifiers"]
    )


def check_analyst_reads_the_catalog_and_the_zones_only(stack: CatalogStack) -> None:
    statements = stack.role_statements("analyst")
    actions = {action for statement in statements for action in statement["actions"]}
    glue = {action for action in actions if action.startswith("glue:")}
    assert glue and all(a.startswith(("glue:Get", "glue:BatchGet")) for a in glue), glue
    databases = {f'aws_glue_catalog_database.zone["{zone}"].name' for zone in ZONES}
    for action in glue:
        for resource in stack.allowed("analyst", action):
            assert resource.endswith(":catalog") or any(d in resource for d in databases), resource
    # the zones are read, the results written, nothing else
    assert stack.allowed("analyst", "s3:GetObject") == {
        ref("module.ingestion_bucket.arn") + "/${local.lake_prefix}/*",
        ref("module.processed_bucket.arn") + "/${local.processed_prefix}/*",
        ref("module.athena_results_bucket.arn") + "/results/*",
    }
    results = ref("module.athena_results_bucket.arn")
    for action in actions:
        if action.startswith("s3:") and not action.startswith(("s3:Get", "s3:List")):
            written = stack.allowed("analyst", action)
            assert all(r.startswith(results) for r in written), f"{action} on {written}"
    assert {a for a in actions if a.startswith("kms:")} == {"kms:Decrypt", "kms:GenerateDataKey"}
    assert stack.allowed("analyst", "kms:Decrypt") == {ref("aws_kms_key.totes.arn")}


CATALOG_CHECKS: list[Callable[[CatalogStack], None]] = [
    check_glue_tables_are_the_zone_modules_tables,
    check_every_partition_is_projected_where_the_zones_put_it,
    check_workgroup_enforces_encrypted_results_and_a_scan_limit,
    check_analyst_queries_through_the_workgroup_only,
    check_analyst_reads_the_catalog_and_the_zones_only,
]


@pytest.mark.parametrize("check", CATALOG_CHECKS, ids=lambda check: check.__name__[6:])
def test_the_catalog_is_wired(check: Callable[[CatalogStack], None]) -> None:
    check(CatalogStack.parse(TERRAFORM))


# One piece of the catalog's wiring removed or bent per case: (file, text as written, replacement).
ZONE_READS = '    sid     = "ReadTheZones"\n    actions = ["s3:GetObject"]\n'
CATALOG_BREAKS = {
    "Glue tables typed apart from the module": (
        "catalog.tf",
        "  parameters = each.value.parameters",
        '  parameters = { classification = "parquet" }',
    ),
    "the processed zone has no database": (
        "catalog.tf",
        '    processed = "The star schema',
        '    retired = "The star schema',
    ),
    "projection off": (
        "modules/zone_tables/main.tf",
        '"projection.enabled" = "true"',
        '"projection.enabled" = "false"',
    ),
    "lake partition is not the lake's": (
        "catalog.tf",
        'lake_partition = "load_date"',
        'lake_partition = "load_day"',
    ),
    "workgroup settings left to the client": (
        "catalog.tf",
        "enforce_workgroup_configuration    = true",
        "enforce_workgroup_configuration    = false",
    ),
    "results encrypted with S3's own key": (
        "catalog.tf",
        'encryption_option = "SSE_KMS"',
        'encryption_option = "SSE_S3"',
    ),
    "no scan limit": (
        "catalog.tf",
        "    bytes_scanned_cutoff_per_query     = var.athena_scan_limit_mb * 1024 * 1024\n",
        "",
    ),
    "results outside the stack": (
        "catalog.tf",
        '"s3://${module.athena_results_bucket.bucket}/results/"',
        '"s3://someone-elses-bucket/results/"',
    ),
    "analyst queries in any workgroup": (
        "catalog.tf",
        "    resources = [aws_athena_workgroup.analysts.arn]",
        '    resources = ["*"]',
    ),
    "analyst writes the lake": (
        "catalog.tf",
        ZONE_READS,
        ZONE_READS.replace('"s3:GetObject"', '"s3:GetObject", "s3:PutObject"'),
    ),
    "analyst changes a table": (
        "catalog.tf",
        '      "glue:GetTable",\n',
        '      "glue:GetTable",\n      "glue:UpdateTable",\n',
    ),
    "anyone may be the analyst": (
        "catalog.tf",
        '      type = "AWS"\n',
        '      type = "*"\n',
    ),
}


@pytest.mark.parametrize("case", list(CATALOG_BREAKS))
def test_a_catalog_check_fails_when_its_wiring_is_broken(case: str, tmp_path: Path) -> None:
    checks_noticing(case, CATALOG_BREAKS, CATALOG_CHECKS, CatalogStack.parse, tmp_path)
