"""Operating it: the run ledger, the metrics, alerts through SNS, and `totes status`.

One scenario through the real CLI: status before any run, a good run, two failing runs (the
source database is gone), then the good run is moved 40 minutes into the past and a third run
fails, so the warehouse is behind its 30-minute SLA. SNS is moto's, with an SQS queue
subscribed, so each test reads back exactly what an on-call engineer would receive.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from ingestion.extract import TABLES
from ingestion.local.postgres import LocalPostgres
from ingestion.local.source.generate import init_source
from ingestion.transform.dbt_build import PROJECT_DIR
from tests.conftest import S3, execute, new_stack, query, settings_environment, totes


@dataclass
class Scenario:
    warehouse_url: str
    status_before: subprocess.CompletedProcess[str]
    good_run: subprocess.CompletedProcess[str]
    status_after_good_run: subprocess.CompletedProcess[str]
    failed_runs: list[subprocess.CompletedProcess[str]]
    status_when_behind: subprocess.CompletedProcess[str]
    messages: list[list[dict[str, Any]]]  # SNS messages received after each failed run


def json_lines(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.fixture(scope="module")
def scenario(postgres: LocalPostgres, s3: S3, tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    home = tmp_path_factory.mktemp("operations")
    settings = new_stack(postgres, home)
    init_source(settings.source_url, scale=0.01, seed=3)
    sns = boto3.client("sns", endpoint_url=s3.endpoint)
    sqs = boto3.client("sqs", endpoint_url=s3.endpoint)
    topic = sns.create_topic(Name=f"totes-alerts-{home.name}")["TopicArn"]
    queue = sqs.create_queue(QueueName=f"on-call-{home.name}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn["Attributes"]["QueueArn"])
    env = settings_environment(
        settings,
        TOTES_ALERT_TOPIC_ARN=topic,
        TOTES_LOG_GROUP="/ecs/totes",
        TOTES_LOG_FORMAT="json",
        AWS_ENDPOINT_URL_SNS=s3.endpoint,
    )
    gone = {**env, "TOTES_SOURCE_URL": settings.source_url.rsplit("/", 1)[0] + "/gone"}
    report = {**env, "TOTES_LOG_FORMAT": "text"}  # `totes status` is read by people

    def received() -> list[dict[str, Any]]:
        answer = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for message in answer.get("Messages", []):
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        return [json.loads(m["Body"]) for m in answer.get("Messages", [])]

    status_before = totes("status", env=report, cwd=home)
    good_run = totes("run", env=env, cwd=home)
    status_after_good_run = totes("status", env=report, cwd=home)
    failed_runs, messages = [], []
    for attempt in range(3):
        if attempt == 2:  # the good run now lies 40 minutes back: the SLA is broken
            execute(
                settings.warehouse_url,
                "update ops.pipeline_runs set started_at = started_at - interval '40 minutes' "
                "where status = 'succeeded'",
            )
        failed_runs.append(totes("run", env=gone, cwd=home))
        messages.append(received())
    status_when_behind = totes("status", env=report, cwd=home)
    return Scenario(
        settings.warehouse_url,
        status_before,
        good_run,
        status_after_good_run,
        failed_runs,
        status_when_behind,
        messages,
    )


def test_every_log_line_is_a_json_object_with_the_run_context(scenario: Scenario) -> None:
    assert scenario.good_run.returncode == 0, scenario.good_run.stderr
    lines = json_lines(scenario.good_run)
    logs = [line for line in lines if "_aws" not in line]
    assert {line["run_id"] for line in logs} == {logs[0]["run_id"]}
    assert all({"time", "level", "run_id", "command", "message"} <= set(line) for line in logs)
    stages = [line for line in logs if line["message"].endswith(" finished")]
    assert [line["stage"] for line in stages] == [
        *("extract", "fx", "deliveries", "load", "dbt", "quarantine", "export")
    ]
    assert all(isinstance(line["seconds"], float) for line in stages)
    extracted = {
        line["table"]: line["rows"]
        for line in logs
        if line.get("stage") == "extract" and "table" in line
    }
    sales_orders = query(scenario.warehouse_url, "select count(*) from fact_sales_order")[0][0]
    assert extracted["sales_order"] == sales_orders
    failure = json_lines(scenario.failed_runs[0])[-1]
    assert failure["level"] == "error" and failure["exit_code"] == 3
    assert 'database "gone" does not exist' in failure["message"]


def test_metrics_are_embedded_metric_format_documents(scenario: Scenario) -> None:
    documents = [line for line in json_lines(scenario.good_run) if "_aws" in line]
    for document in documents:
        (directive,) = document["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "totes"
        for dimension in directive["Dimensions"][0]:
            assert isinstance(document[dimension], str)
        for metric in directive["Metrics"]:
            assert isinstance(document[metric["Name"]], int | float), metric
    assert {d["run_id"] for d in documents} == {json_lines(scenario.good_run)[0]["run_id"]}
    run = next(d for d in documents if "RunSucceeded" in d)
    assert (run["Command"], run["RunSucceeded"], run["RunFailed"]) == ("run", 1, 0)
    assert 0 < run["FreshnessLagSeconds"] <= run["RunSeconds"] + 1
    payments = next(d for d in documents if d.get("Table") == "payment")
    assert payments["RowsExtracted"] == payments["RowsLoaded"] > 0
    failed = next(d for d in json_lines(scenario.failed_runs[0]) if "RunFailed" in d)
    assert failed["RunFailed"] == 1


def test_the_ledger_records_successful_and_failed_runs(scenario: Scenario) -> None:
    runs = query(
        scenario.warehouse_url,
        "select status, exit_code, failed_stage, error is not null, finished_at is not null "
        "from ops.pipeline_runs order by started_at",
    )
    assert runs[0] == ("succeeded", 0, None, False, True)
    assert runs[1:] == [("failed", 3, None, True, True)] * 3  # failed before any stage began
    tables = query(
        scenario.warehouse_url,
        "select t.table_name, t.extracted = t.loaded, t.caught_up from ops.pipeline_run_tables t "
        "join ops.pipeline_runs r using (run_id) where r.status = 'succeeded' and t.caught_up",
    )
    assert sorted(t[0] for t in tables) == sorted(TABLES) and all(t[1] for t in tables)
    nodes = query(
        scenario.warehouse_url, "select unique_id, resource_type, status from ops.dbt_node_results"
    )
    built = sorted(unique_id.split(".")[-1] for unique_id, kind, _ in nodes if kind == "model")
    assert built == sorted(model.stem for model in (PROJECT_DIR / "models").rglob("*.sql"))
    assert any(kind == "test" for _, kind, _ in nodes)
    assert all(status in ("success", "pass") for _, _, status in nodes)


def test_a_failure_sends_one_alert_and_repeats_are_held_back(scenario: Scenario) -> None:
    first, repeated, _ = scenario.messages
    assert repeated == []  # the same failure within the hour: no second email
    (alert,) = first
    assert alert["Subject"] == "totes run failed at start-up"
    body = alert["Message"]
    assert 'database "gone" does not exist' in body
    run_id = json_lines(scenario.failed_runs[0])[-1]["run_id"]
    assert f"Run id: {run_id}" in body
    assert f"the log lines with run_id {run_id} in log group /ecs/totes" in body
    held = [line for line in json_lines(scenario.failed_runs[1]) if "alert" in line]
    assert [line["sent"] for line in held] == [False]


def test_falling_behind_the_sla_sends_a_freshness_alert(scenario: Scenario) -> None:
    (alert,) = scenario.messages[2]  # the failure itself is still held back
    assert alert["Subject"].startswith("totes freshness breach: warehouse 4")
    assert "more than 30 minutes behind" in alert["Message"]
    assert "sales_order 4" in alert["Message"]


def test_status_exits_non_zero_while_the_warehouse_is_behind(scenario: Scenario) -> None:
    assert scenario.status_before.returncode == 4
    assert "no run is recorded" in scenario.status_before.stdout
    assert scenario.status_after_good_run.returncode == 0, scenario.status_after_good_run.stderr
    assert "next step: nothing: all is well" in scenario.status_after_good_run.stdout
    behind = scenario.status_when_behind
    assert behind.returncode == 4
    assert "sales_order" in behind.stdout and "BEHIND" in behind.stdout
    assert "the last run failed at start-up: fix the database URL" in behind.stdout
    assert "totes: error: 11 tables are behind the SLA" in behind.stderr
