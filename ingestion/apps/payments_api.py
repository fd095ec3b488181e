"""The payments API: the payments made lately and the ones due next, from the warehouse.

    GET /payments/last5   the five most recent paid payments
    GET /payments/next5   the five next scheduled payments not paid yet (due today or later)
    GET /health           the warehouse answers, and when its newest payment change happened

Every path but /health needs `Authorization: Bearer <token>`, a token the given TokenSource
accepts (see ingestion.apps.api_auth): 401 without one, 403 for a wrong one, and 429 for an
address that failed too often lately, before its token is even looked at. The docs and the spec
stay open: they hold no data, and the docs' Authorize button is where a token is tried.

Payments are their current state (`fact_payment_current`: the latest version of each payment
still in totesys) with the names from their dimensions. `totes api` serves it; the OpenAPI spec
is at /openapi.json and the docs at /docs. Errors are JSON `{"detail": ...}` and never name the
database: 503 when the warehouse is unreachable or not built yet.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from datetime import UTC, date
from decimal import Decimal
from typing import Annotated, Any, Literal, NoReturn

import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AwareDatetime, BaseModel, Field

from ingestion.apps.api_auth import FailureLimit, TokenSource, TokensUnavailable, accepts
from ingestion.config import sqlalchemy_url

LOG = logging.getLogger(__name__)

PAYMENTS = """
select
    payment.payment_id,
    payment.payment_date,
    payment.payment_amount as amount,
    currency.currency_code as currency,
    counterparty.counterparty_legal_name as counterparty,
    payment_type.payment_type_name as payment_type,
    payment.paid
from fact_payment_current as payment
inner join dim_currency as currency on payment.currency_id = currency.currency_id
inner join dim_counterparty as counterparty
    on payment.counterparty_id = counterparty.counterparty_id
inner join dim_payment_type as payment_type
    on payment.payment_type_id = payment_type.payment_type_id
"""
LAST_PAID = (
    PAYMENTS
    + """
where payment.paid
order by payment.payment_date desc, payment.payment_id desc
limit :limit
"""
)
NEXT_DUE = (
    PAYMENTS
    + """
where not payment.paid and payment.payment_date >= current_date
order by payment.payment_date asc, payment.payment_id asc
limit :limit
"""
)
NEWEST_CHANGE = """
select max(last_updated_date + last_updated_time) from fact_payment_current
"""


class Payment(BaseModel):
    payment_id: int = Field(description="The totesys payment id.")
    payment_date: date = Field(description="When the payment is (or was) due.")
    amount: Annotated[Decimal, Field(max_digits=10, decimal_places=2)] = Field(
        description="In the payment's own currency (not converted), as a decimal string."
    )
    currency: str = Field(description="ISO 4217 code.", examples=["GBP"])
    counterparty: str = Field(description="The counterparty's legal name.")
    payment_type: str = Field(examples=["SALES_RECEIPT"])
    paid: bool


class Payments(BaseModel):
    payments: list[Payment] = Field(description="At most five, in the order the path names.")


class Health(BaseModel):
    status: Literal["ok"]
    newest_payment_change: AwareDatetime | None = Field(
        description="The last_updated (UTC) of the newest payment version in the warehouse."
    )


class Problem(BaseModel):
    detail: str


# the same few words for every refusal of a kind: nothing in them helps a guesser
NO_CREDENTIAL = "a bearer token is required"
WRONG_CREDENTIAL = "invalid credential"
TOO_MANY = "too many failed attempts; try again later"
UNAVAILABLE = "authentication is unavailable; try again shortly"

AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {
        "model": Problem,
        "description": "No bearer token was sent.",
        "headers": {"WWW-Authenticate": {"schema": {"type": "string"}, "example": "Bearer"}},
    },
    403: {"model": Problem, "description": "The token is not one the API accepts."},
    429: {
        "model": Problem,
        "description": "Too many failed attempts from this address lately; the token sent was "
        "not looked at.",
        "headers": {
            "Retry-After": {
                "schema": {"type": "integer", "minimum": 1},
                "description": "Seconds until this address may try again.",
            }
        },
    },
}

# the scheme the spec declares (and the docs' Authorize button asks for)
BEARER = HTTPBearer(
    auto_error=False,  # the refusals are ours: the rate limit goes first, and is counted
    scheme_name="bearerToken",
    description="A token from $TOTES_HOME/api-tokens, or from the Secrets Manager secret "
    "that TOTES_API_TOKENS_SECRET names.",
)


def create_app(
    warehouse_url: str,
    tokens: TokenSource,
    *,
    max_failures: int = 10,
    failure_window: float = 60.0,
    max_addresses: int = 10_000,
    clock: Callable[[], float] = time.monotonic,
) -> FastAPI:
    """The API on one warehouse, with a small connection pool for its lifetime. `tokens` says
    which bearer tokens it accepts; an address gets at most `max_failures` failed attempts in
    any `failure_window` seconds (of `clock`), and at most `max_addresses` are remembered."""
    engine = sa.create_engine(
        sqlalchemy_url(warehouse_url),
        pool_size=4,
        pool_pre_ping=True,  # a restarted warehouse costs one retry, not an error
        connect_args={"connect_timeout": 5},
    )

    failures = FailureLimit(max_failures, failure_window, max_addresses, clock)

    def authenticated(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
    ) -> None:
        address = request.client.host if request.client else "unknown"
        wait = failures.retry_after(address)
        if wait is not None:  # before the token is looked at: a guesser learns nothing more
            raise HTTPException(429, TOO_MANY, headers={"Retry-After": str(wait)})
        if credentials is None:  # no Authorization header, another scheme, or no token
            refuse(request, address, 401, NO_CREDENTIAL, {"WWW-Authenticate": "Bearer"})
        try:
            accepted = tokens.current()
        except TokensUnavailable:  # the source logged why
            raise HTTPException(503, UNAVAILABLE) from None
        if not accepts(credentials.credentials, accepted):
            refuse(request, address, 403, WRONG_CREDENTIAL)

    def refuse(
        request: Request,
        address: str,
        status: int,
        detail: str,
        headers: dict[str, str] | None = None,
    ) -> NoReturn:
        failures.record(address)
        # the address and path only: never the token, nor anything else the client sent
        LOG.warning("API authentication failed from %s on %s", address, request.url.path)
        raise HTTPException(status, detail, headers=headers)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # read the tokens at start; a failure is logged by the source, and requests that need
        # a token are answered 503 until they can be read
        with suppress(TokensUnavailable):
            tokens.current()
        yield
        engine.dispose()

    app = FastAPI(
        title="totes payments API",
        version="1.0.0",
        description="Recent and upcoming totesys payments, read from the star-schema warehouse.",
        lifespan=lifespan,
        responses={
            503: {
                "model": Problem,
                "description": "The warehouse is unreachable or not built, or the accepted "
                "tokens cannot be read.",
            },
            500: {"model": Problem, "description": "A fault of the API: see its log."},
        },
    )

    def rows(statement: str, **params: Any) -> list[dict[str, Any]]:
        with engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(sa.text(statement), params)]

    # the payments are for those with a token; /health is not
    payments = APIRouter(dependencies=[Depends(authenticated)], responses=AUTH_RESPONSES)

    @payments.get("/payments/last5", summary="The five most recent paid payments")
    def last_paid() -> Payments:
        """Newest payment_date first."""
        return Payments(payments=[Payment(**row) for row in rows(LAST_PAID, limit=5)])

    @payments.get("/payments/next5", summary="The next five scheduled payments not paid yet")
    def next_due() -> Payments:
        """Due today (the warehouse's date) or later, soonest first."""
        return Payments(payments=[Payment(**row) for row in rows(NEXT_DUE, limit=5)])

    app.include_router(payments)

    @app.get("/health", summary="Whether the warehouse answers")
    def health() -> Health:
        (row,) = rows(NEWEST_CHANGE)
        newest = row["max"]  # the warehouse's times are naive UTC: say so (RFC 3339)
        return Health(status="ok", newest_payment_change=newest and newest.replace(tzinfo=UTC))

    @app.exception_handler(sa.exc.OperationalError)
    async def unreachable(_: Request, __: Exception) -> JSONResponse:
        return _problem(503, "the warehouse is unreachable; try again shortly")

    @app.exception_handler(sa.exc.ProgrammingError)
    async def not_built(request: Request, error: Exception) -> JSONResponse:
        if "does not exist" in str(error):  # the payment tables are not built yet
            return _problem(503, "the warehouse has no payment tables yet: run `totes run`")
        return await unexpected(request, error)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        # the traceback goes to the log; the body says nothing about the database
        LOG.error("%s %s failed", request.method, request.url.path, exc_info=error)
        return _problem(500, "internal error; see the API's log")

    return app


def _problem(status: int, detail: str) -> JSONResponse:
    return JSONResponse(status_code=status, content=Problem(detail=detail).model_dump())
