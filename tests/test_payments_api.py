"""The payments API against a warehouse the pipeline built, checked against the source itself,
and fuzzed by schemathesis from its own OpenAPI spec."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import hypothesis
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient

from ingestion.apps.payments_api import create_app
from ingestion.common.database import preflight
from ingestion.config import Settings
from ingestion.local.postgres import LocalPostgres
from ingestion.local.source.churn import now_utc
from ingestion.local.source.generate import init_source
from ingestion.pipeline import run
from tests.conftest import (
    create_database,
    execute,
    free_port,
    new_stack,
    query,
    settings_environment,
    wait_for_port,
)

# the source's own answer: current payments with their names, as the spec defines them
SOURCE_PAYMENTS = """
select p.payment_id, p.payment_date::date, p.payment_amount::text, c.currency_code,
       cp.counterparty_legal_name, t.payment_type_name, p.paid
from payment p
join currency c using (currency_id)
join counterparty cp using (counterparty_id)
join payment_type t using (payment_type_id)
"""


@pytest.fixture(scope="module")
def warehouse(postgres: LocalPostgres, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = new_stack(postgres, tmp_path_factory.mktemp("api"))
    preflight(settings)
    init_source(settings.source_url, scale=0.02, seed=11)
    # payments due in the coming days, so /payments/next5 has something to list
    soon = date.today() + timedelta(days=3)
    execute(
        settings.source_url,
        f"update payment set paid = false, payment_date = '{soon.isoformat()}', "
        f"last_updated = '{now_utc()}' where payment_id in "
        "(select payment_id from payment order by payment_id limit 7)",
    )
    run(settings)
    return settings


@pytest.fixture(scope="module")
def app(warehouse: Settings) -> Iterator[FastAPI]:
    app = create_app(warehouse.warehouse_url)
    with TestClient(app):  # runs the lifespan: the pool is closed afterwards
        yield app


@pytest.fixture(scope="module")
def client(app: FastAPI) -> TestClient:
    return TestClient(app)


def as_json(row: tuple[object, ...]) -> dict[str, object]:
    payment_id, payment_date, amount, currency, counterparty, payment_type, paid = row
    return {
        "payment_id": payment_id,
        "payment_date": str(payment_date),
        "amount": amount,
        "currency": currency,
        "counterparty": counterparty,
        "payment_type": payment_type,
        "paid": paid,
    }


@pytest.mark.parametrize(
    ("path", "source_answer"),
    [
        # the five most recent paid payments
        ("/payments/last5", "where p.paid order by p.payment_date::date desc, p.payment_id desc"),
        # the next five unpaid payments due from today
        (
            "/payments/next5",
            "where not p.paid and p.payment_date::date >= current_date "
            "order by p.payment_date::date, p.payment_id",
        ),
    ],
)
def test_each_list_is_the_sources_own_answer(
    warehouse: Settings, client: TestClient, path: str, source_answer: str
) -> None:
    expected = query(warehouse.source_url, f"{SOURCE_PAYMENTS} {source_answer} limit 5")
    response = client.get(path)
    assert response.status_code == 200
    assert response.json() == {"payments": [as_json(row) for row in expected]}
    assert len(expected) == 5


def test_health_reports_the_newest_payment_change(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["newest_payment_change"].endswith("Z")  # UTC, said so


def test_an_unreachable_warehouse_is_a_503_that_hides_the_address_and_password() -> None:
    url = f"postgresql://payments:s3cret-pw@127.0.0.1:{free_port()}/warehouse"
    with TestClient(create_app(url)) as client:
        for path in ("/payments/last5", "/payments/next5", "/health"):
            response = client.get(path)
            assert response.status_code == 503
            assert response.json() == {"detail": "the warehouse is unreachable; try again shortly"}
            assert "s3cret" not in response.text


def test_a_warehouse_not_built_yet_is_a_503_that_says_what_to_do(
    postgres: LocalPostgres,
) -> None:
    with TestClient(create_app(create_database(postgres, "api_empty"))) as client:
        response = client.get("/payments/last5")
    assert response.status_code == 503
    assert "run `totes run`" in response.json()["detail"]


def test_a_query_that_fails_is_a_json_500_that_hides_the_database(
    postgres: LocalPostgres,
) -> None:
    url = create_database(postgres, "api_broken")
    execute(
        url,
        "create table dim_currency as select 1 as currency_id, 'GBP' as currency_code;"
        "create table dim_counterparty as select 1 as counterparty_id,"
        " 'Acme' as counterparty_legal_name;"
        "create table dim_payment_type as select 1 as payment_type_id,"
        " 'SALES_RECEIPT' as payment_type_name;"
        "create table numbers as select 0 as zero;"
        "create view fact_payment_current as select 1 / zero as payment_id,"
        " current_date as payment_date, 1.00 as payment_amount, 1 as currency_id,"
        " 1 as counterparty_id, 1 as payment_type_id, true as paid from numbers;",
    )
    with TestClient(create_app(url), raise_server_exceptions=False) as client:
        response = client.get("/payments/last5")
    assert response.status_code == 500
    assert response.json() == {"detail": "internal error; see the API's log"}
    assert "zero" not in response.text


def test_paths_and_methods_it_does_not_serve_are_json_4xx(client: TestClient) -> None:
    assert client.get("/payments/last6").status_code == 404
    response = client.post("/payments/last5")
    assert response.status_code == 405
    assert response.json() == {"detail": "Method Not Allowed"}


def test_the_openapi_spec_types_every_response(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for path in ("/payments/last5", "/payments/next5", "/health"):
        responses = spec["paths"][path]["get"]["responses"]
        assert "$ref" in responses["200"]["content"]["application/json"]["schema"]
        assert "503" in responses


def test_every_operation_conforms_to_its_openapi_spec(app: FastAPI) -> None:
    """schemathesis generates requests from the spec and checks every response against it
    (status codes, content type, schema). Its pytest fixture loader does not support pytest 9
    yet (it reads a removed private attribute), so the operations are driven here."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 3
    for operation in operations:

        @hypothesis.given(case=operation.as_strategy())
        @hypothesis.settings(
            max_examples=20,
            deadline=None,
            database=None,
            suppress_health_check=list(hypothesis.HealthCheck),
        )
        def conforms(case: schemathesis.Case) -> None:
            case.call_and_validate()

        conforms()


def test_totes_api_serves_the_configured_warehouse_over_http(
    warehouse: Settings, tmp_path: Path
) -> None:
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "totes"), "api", "--port", str(port)],
        env=settings_environment(warehouse),
        cwd=tmp_path,
    )  # its output goes to pytest's capture, shown if the test fails
    try:
        wait_for_port(port, server, "totes api", seconds=60)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/payments/last5", timeout=10) as r:
            assert len(json.loads(r.read())["payments"]) == 5
    finally:
        server.terminate()
        server.wait(timeout=30)
