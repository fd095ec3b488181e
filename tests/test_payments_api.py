"""The payments API against a warehouse the pipeline built, checked against the source itself,
and fuzzed by schemathesis from its own OpenAPI spec, with a bearer token and without one; its
tokens from a file and from Secrets Manager (moto's server), rotated without a restart."""

from __future__ import annotations

import json
import logging
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import boto3
import hypothesis
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient

from ingestion.apps.api_auth import (
    FailureLimit,
    SecretsManagerTokens,
    TokenFile,
    new_token,
    token_source,
)
from ingestion.apps.payments_api import (
    NO_CREDENTIAL,
    TOO_MANY,
    UNAVAILABLE,
    WRONG_CREDENTIAL,
    create_app,
)
from ingestion.common.database import preflight
from ingestion.config import Settings
from ingestion.errors import ConfigError
from ingestion.local.postgres import LocalPostgres
from ingestion.local.source.churn import now_utc
from ingestion.local.source.generate import init_source
from ingestion.pipeline import run
from tests.conftest import (
    S3,
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


PROTECTED = ("/payments/last5", "/payments/next5")


class Clock:
    """A clock the test moves: the rate limit's and Secrets Manager's minutes, without sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def token_file(tmp_path_factory: pytest.TempPathFactory) -> TokenFile:
    tokens = TokenFile(tmp_path_factory.mktemp("tokens") / "api-tokens")
    assert tokens.create()
    return tokens


@pytest.fixture(scope="module")
def token(token_file: TokenFile) -> str:
    (token,) = token_file.current()
    return token


@pytest.fixture(scope="module")
def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def app(warehouse: Settings, token_file: TokenFile) -> Iterator[FastAPI]:
    # this module's tests fail on purpose, many times, from the test client's one address: the
    # limit on failures has tests (and apps) of its own
    app = create_app(warehouse.warehouse_url, token_file, max_failures=1_000_000)
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
    warehouse: Settings, client: TestClient, auth: dict[str, str], path: str, source_answer: str
) -> None:
    expected = query(warehouse.source_url, f"{SOURCE_PAYMENTS} {source_answer} limit 5")
    response = client.get(path, headers=auth)
    assert response.status_code == 200
    assert response.json() == {"payments": [as_json(row) for row in expected]}
    assert len(expected) == 5


def test_health_reports_the_newest_payment_change_without_a_token(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["newest_payment_change"].endswith("Z")  # UTC, said so


def test_an_unreachable_warehouse_is_a_503_that_hides_the_address_and_password(
    token_file: TokenFile, auth: dict[str, str]
) -> None:
    url = f"postgresql://payments:s3cret-pw@127.0.0.1:{free_port()}/warehouse"
    with TestClient(create_app(url, token_file)) as client:
        for path in (*PROTECTED, "/health"):
            response = client.get(path, headers=auth)
            assert response.status_code == 503
            assert response.json() == {"detail": "the warehouse is unreachable; try again shortly"}
            assert "s3cret" not in response.text


def test_a_warehouse_not_built_yet_is_a_503_that_says_what_to_do(
    postgres: LocalPostgres, token_file: TokenFile, auth: dict[str, str]
) -> None:
    with TestClient(create_app(create_database(postgres, "api_empty"), token_file)) as client:
        response = client.get("/payments/last5", headers=auth)
    assert response.status_code == 503
    assert "run `totes run`" in response.json()["detail"]


def test_a_query_that_fails_is_a_json_500_that_hides_the_database(
    postgres: LocalPostgres, token_file: TokenFile, auth: dict[str, str]
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
    with TestClient(create_app(url, token_file), raise_server_exceptions=False) as client:
        response = client.get("/payments/last5", headers=auth)
    assert response.status_code == 500
    assert response.json() == {"detail": "internal error; see the API's log"}
    assert "zero" not in response.text


def test_paths_and_methods_it_does_not_serve_are_json_4xx(client: TestClient) -> None:
    assert client.get("/payments/last6").status_code == 404
    response = client.post("/payments/last5")
    assert response.status_code == 405
    assert response.json() == {"detail": "Method Not Allowed"}


def test_the_openapi_spec_types_every_response_and_declares_the_bearer_scheme(
    client: TestClient,
) -> None:
    spec = client.get("/openapi.json").json()  # open, as are the docs: they hold no data
    assert client.get("/docs").status_code == 200
    scheme = spec["components"]["securitySchemes"]["bearerToken"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    problem = {"$ref": "#/components/schemas/Problem"}
    for path in (*PROTECTED, "/health"):
        operation = spec["paths"][path]["get"]
        responses = operation["responses"]
        assert "$ref" in responses["200"]["content"]["application/json"]["schema"]
        assert "503" in responses
        if path == "/health":
            assert "security" not in operation
            assert not {"401", "403", "429"} & set(responses)
            continue
        assert operation["security"] == [{"bearerToken": []}]
        for status in ("401", "403", "429"):
            assert responses[status]["content"]["application/json"]["schema"] == problem
        assert "WWW-Authenticate" in responses["401"]["headers"]
        assert "Retry-After" in responses["429"]["headers"]


@pytest.mark.parametrize("path", PROTECTED)
@pytest.mark.parametrize(
    "authorization",
    [None, "Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "bearer"],
    ids=["no header", "another scheme", "no token", "an empty token", "lower-case, no token"],
)
def test_without_a_bearer_token_a_payments_path_is_a_401_that_says_only_that(
    client: TestClient, path: str, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = client.get(path, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json() == {"detail": NO_CREDENTIAL}


@pytest.mark.parametrize("path", PROTECTED)
def test_a_wrong_token_is_a_403_that_says_the_same_for_any_wrong_token(
    client: TestClient, token: str, path: str
) -> None:
    near_misses = [token[:-1], token + "x", token.upper(), " ".join(token), new_token(), "x"]
    for wrong in near_misses:
        response = client.get(path, headers={"Authorization": f"Bearer {wrong}"})
        assert response.status_code == 403, wrong
        assert response.json() == {"detail": WRONG_CREDENTIAL}
        assert "WWW-Authenticate" not in response.headers
    # the scheme's name is case-insensitive (RFC 9110), the token is not
    right = client.get(path, headers={"Authorization": f"bearer {token}"})
    assert right.status_code == 200


def test_the_token_file_is_made_once_with_one_new_token_that_only_its_owner_reads(
    tmp_path: Path,
) -> None:
    tokens = token_source(None, tmp_path / "home")  # as `totes api` without a secret
    assert isinstance(tokens, TokenFile)
    path = tmp_path / "home" / "api-tokens"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    (made,) = path.read_text().splitlines()
    assert len(made) == 43  # 32 random bytes, base64url
    assert not tokens.create()  # there already: kept, not replaced
    assert tokens.current() == {made}
    assert tokens.instructions("http://127.0.0.1:8000") == (
        "every path but /health needs a bearer token: curl -H "
        f'"Authorization: Bearer $(head -1 {path})" http://127.0.0.1:8000/payments/last5'
    )


def test_a_token_file_that_cannot_be_made_is_one_clear_error(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.write_text("a file where TOTES_HOME's folder should be")
    with pytest.raises(ConfigError, match=r"cannot make the API's token file .* set TOTES_HOME"):
        token_source(None, home)


def test_a_secret_named_without_a_region_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    with pytest.raises(ConfigError, match="no AWS region is set: set AWS_REGION"):
        token_source("totes/api-tokens", tmp_path)
    assert not (tmp_path / "api-tokens").exists()  # no token file in its place


def test_an_edited_token_file_rotates_the_tokens_without_a_restart(
    warehouse: Settings, tmp_path: Path
) -> None:
    tokens = TokenFile(tmp_path / "api-tokens")
    tokens.create()
    old = tokens.path.read_text().strip()
    new = new_token()

    def status(token: str) -> int:
        return client.get(
            "/payments/last5", headers={"Authorization": f"Bearer {token}"}
        ).status_code

    with TestClient(create_app(warehouse.warehouse_url, tokens)) as client:
        assert (status(old), status(new)) == (200, 403)
        with tokens.path.open("a") as file:  # a new token beside the old: clients move
            file.write(f"{new}\n")
        assert (status(old), status(new)) == (200, 200)
        tokens.path.write_text(f"{new}\n")  # the old one removed
        assert (status(old), status(new)) == (403, 200)
        tokens.path.unlink()  # no file, no way in: and the server says it is its fault
        response = client.get("/payments/last5", headers={"Authorization": f"Bearer {new}"})
        assert response.status_code == 503
        assert response.json() == {"detail": UNAVAILABLE}
        tokens.path.write_text(f"{new}\n")
        assert status(new) == 200


@pytest.mark.parametrize("content", ["", "\n \n"], ids=["empty", "blank lines"])
def test_a_token_file_without_tokens_lets_nobody_in(
    warehouse: Settings, tmp_path: Path, token: str, content: str
) -> None:
    path = tmp_path / "api-tokens"
    path.write_text(content)
    with TestClient(create_app(warehouse.warehouse_url, TokenFile(path))) as client:
        for presented in (token, new_token(), "x"):
            response = client.get(
                "/payments/last5", headers={"Authorization": f"Bearer {presented}"}
            )
            assert response.status_code == 403
            assert response.json() == {"detail": WRONG_CREDENTIAL}
        assert client.get("/payments/last5").status_code == 401
        assert client.get("/health").status_code == 200


def test_a_secrets_manager_secret_rotates_the_tokens_and_its_last_tokens_outlive_a_failed_read(
    warehouse: Settings,
    s3: S3,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Against moto's server over HTTP, as against AWS: a put value is read within a minute,
    and while the secret cannot be read the tokens read last stay valid."""
    secrets = boto3.client("secretsmanager", endpoint_url=s3.endpoint)
    first, second, third = new_token(), new_token(), new_token()
    name = s3.new_secret("totes/api-tokens", first)  # its ARN

    # `totes api` with TOTES_API_TOKENS_SECRET: it reads that secret, and makes no token file
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", s3.endpoint)
    chosen = token_source(name, tmp_path)
    assert isinstance(chosen, SecretsManagerTokens)
    assert chosen.current() == {first}
    assert not (tmp_path / "api-tokens").exists()
    assert f"one of those in the Secrets Manager secret {name}:" in chosen.instructions("http://h")

    clock = Clock()
    tokens = SecretsManagerTokens(name, secrets, clock=clock)

    def status(token: str) -> int:
        return client.get(
            "/payments/last5", headers={"Authorization": f"Bearer {token}"}
        ).status_code

    caplog.set_level(logging.WARNING)
    with TestClient(create_app(warehouse.warehouse_url, tokens, clock=clock)) as client:
        assert (status(first), status(second)) == (200, 403)
        secrets.put_secret_value(SecretId=name, SecretString=f"{first}\n{second}\n")
        clock.now += 30  # the copy read at start is fresh still
        assert status(second) == 403
        clock.now += 30
        assert (status(first), status(second)) == (200, 200)
        secrets.put_secret_value(SecretId=name, SecretString=second)
        clock.now += 60
        assert (status(first), status(second)) == (403, 200)

        secrets.delete_secret(SecretId=name, RecoveryWindowInDays=7)  # unreadable now
        clock.now += 60
        assert status(second) == 200  # the last tokens read stay valid
        (warning,) = [r for r in caplog.records if "could not be read again" in r.getMessage()]
        assert name in warning.getMessage()
        assert second not in warning.getMessage()

        secrets.restore_secret(SecretId=name)
        secrets.put_secret_value(SecretId=name, SecretString=third)
        clock.now += 5  # a failed read is tried again 5 s later
        assert (status(second), status(third)) == (403, 200)

    # a secret that was never read: 503, and the answer names no secret
    missing = SecretsManagerTokens(f"{name}-missing", secrets, clock=clock)
    with TestClient(create_app(warehouse.warehouse_url, missing)) as client:
        response = client.get("/payments/last5", headers={"Authorization": f"Bearer {third}"})
        assert response.status_code == 503
        assert response.json() == {"detail": UNAVAILABLE}
        assert client.get("/payments/last5").status_code == 401  # no token: said first
    assert any(f"{name}-missing" in r.getMessage() for r in caplog.records)  # the log says which
    for record in caplog.records:
        for token in (first, second, third):
            assert token not in record.getMessage()


def test_ten_failures_from_one_address_stop_it_for_a_minute_even_with_the_right_token(
    warehouse: Settings,
    token_file: TokenFile,
    auth: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    app = create_app(warehouse.warehouse_url, token_file, clock=clock)
    guesser = TestClient(app, client=("203.0.113.7", 50000))
    neighbour = TestClient(app, client=("198.51.100.2", 50000))
    wrong = {"Authorization": f"Bearer {new_token()}"}
    caplog.set_level(logging.WARNING)
    with guesser:
        for attempt in range(9):  # 401s and 403s count alike
            refused = guesser.get(PROTECTED[attempt % 2], headers=wrong if attempt % 3 else {})
            assert refused.status_code in (401, 403)
        assert guesser.get("/payments/last5", headers=auth).status_code == 200  # no reset
        clock.now += 10
        assert guesser.get("/payments/next5", headers=wrong).status_code == 403  # the tenth

        limited = guesser.get("/payments/last5", headers=auth)  # the token is not looked at
        assert limited.status_code == 429
        assert limited.headers["Retry-After"] == "50"  # the first failure, 10 s ago, goes at 60
        assert limited.json() == {"detail": TOO_MANY}
        assert guesser.get("/payments/next5", headers=wrong).status_code == 429
        assert guesser.get("/payments/next5").status_code == 429
        assert guesser.get("/health").status_code == 200  # no token needed, none refused
        assert neighbour.get("/payments/last5", headers=auth).status_code == 200

        clock.now += 49.5
        assert guesser.get("/payments/last5", headers=auth).headers["Retry-After"] == "1"
        clock.now += 0.5  # the first failures are a minute old: it may try again
        assert guesser.get("/payments/last5", headers=auth).status_code == 200

    failures = [r.getMessage() for r in caplog.records if r.name.endswith("payments_api")]
    assert len(failures) == 10  # one line a failure; none for the 429s
    assert set(failures) == {
        "API authentication failed from 203.0.113.7 on /payments/last5",
        "API authentication failed from 203.0.113.7 on /payments/next5",
    }


def test_the_failure_tracker_forgets_the_addresses_that_failed_longest_ago() -> None:
    clock = Clock()
    limit = FailureLimit(max_failures=2, window=60, max_addresses=3, clock=clock)
    for address in ("a", "b", "c", "a", "d"):  # "a" failed again after "b"
        limit.record(address)
        limit.record(address)
    assert len(limit) == 3
    assert limit.retry_after("b") is None  # forgotten: the oldest
    assert [limit.retry_after(address) for address in ("a", "c", "d")] == [60, 60, 60]


def test_no_token_reaches_a_log_record_or_a_response(
    warehouse: Settings, token_file: TokenFile, token: str, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = new_token()
    caplog.set_level(logging.DEBUG)
    sent = [
        {"Authorization": f"Bearer {token}"},
        {"Authorization": f"Bearer {wrong}"},
        {"Authorization": f"Basic {token}"},
        {"Authorization": f"Bearer {token[:20]}"},
        {},
    ]
    with TestClient(create_app(warehouse.warehouse_url, token_file, max_failures=3)) as client:
        responses = [client.get(path, headers=headers) for path in PROTECTED for headers in sent]
    assert {response.status_code for response in responses} == {200, 401, 403, 429}
    logged = [f"{r.getMessage()} {r.args!r} {r.exc_text}" for r in caplog.records]
    assert any("API authentication failed" in line for line in logged)
    said = [f"{r.text} {r.headers!r}" for r in responses] + logged
    for secret in (token, wrong, token[:20]):
        assert not [text for text in said if secret in text]


def fuzz(app: FastAPI, headers: dict[str, str] | None) -> dict[str, set[int]]:
    """schemathesis generates requests from the spec and checks every response against it:
    status codes, content type, headers, schema, and (with a token) that the operation refuses
    the request without it and with a wrong one (`ignored_auth`). Its pytest fixture loader
    does not support pytest 9 yet (it reads a removed private attribute), so the operations
    are driven here. The status codes seen, per path."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 3
    return {operation.path: _statuses(operation, headers) for operation in operations}


def _statuses(operation: schemathesis.APIOperation, headers: dict[str, str] | None) -> set[int]:
    statuses: set[int] = set()

    @hypothesis.given(case=operation.as_strategy())
    @hypothesis.settings(
        max_examples=20,
        deadline=None,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    def conforms(case: schemathesis.Case) -> None:
        statuses.add(case.call_and_validate(headers=headers).status_code)

    conforms()
    return statuses


def test_every_operation_conforms_to_its_openapi_spec_with_a_token(
    app: FastAPI, auth: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    assert fuzz(app, auth) == {path: {200} for path in (*PROTECTED, "/health")}
    # ignored_auth sent each payments path's requests again without the token and with a
    # wrong one, and they were refused (or it would have failed)
    refused = {r.getMessage() for r in caplog.records if "authentication failed" in r.getMessage()}
    assert refused == {f"API authentication failed from testclient on {path}" for path in PROTECTED}


def test_every_operation_conforms_to_its_openapi_spec_without_a_token(app: FastAPI) -> None:
    seen = fuzz(app, None)
    assert seen["/health"] == {200}
    for path in PROTECTED:
        # 401; and 403 when schemathesis makes up a bearer token for the declared scheme
        assert 401 in seen[path]
        assert seen[path] <= {401, 403}


def test_totes_api_serves_the_configured_warehouse_to_the_token_it_made(
    warehouse: Settings, tmp_path: Path
) -> None:
    """In a folder as a fresh clone is (TOTES_HOME not set: .totes), `totes api` makes its
    token file, prints a command that uses it, and never prints the token."""
    port = free_port()
    env = settings_environment(warehouse, PYTHONUNBUFFERED="1")
    del env["TOTES_HOME"]
    output = tmp_path / "output.log"
    with output.open("w") as out:
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "totes"), "api", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    wrong = new_token()
    url = f"http://127.0.0.1:{port}/payments/last5"
    try:
        wait_for_port(port, server, "totes api", seconds=60)
        tokens = tmp_path / ".totes" / "api-tokens"
        assert stat.S_IMODE(tokens.stat().st_mode) == 0o600
        (token,) = tokens.read_text().split()

        # how to use it, and not the token itself (the README's own call is run by its test)
        printed = output.read_text().splitlines()
        assert (
            "every path but /health needs a bearer token: curl -H "
            f'"Authorization: Bearer $(head -1 .totes/api-tokens)" {url}'
        ) in printed
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 (http)
            assert len(json.loads(answer.read())["payments"]) == 5

        for headers, status in (({}, 401), ({"Authorization": f"Bearer {wrong}"}, 403)):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10)
            assert refused.value.code == status
    finally:
        server.terminate()
        server.wait(timeout=30)
    said = output.read_text()
    assert "API authentication failed from 127.0.0.1 on /payments/last5" in said
    assert token not in said
    assert wrong not in said
