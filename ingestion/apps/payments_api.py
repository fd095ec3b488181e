"""The payments API: the payments made lately and the ones due next, from the warehouse.

    GET /payments/last5   the five most recent paid payments
    GET /payments/next5   the five next scheduled payments not paid yet (due today or later)
    GET /health           the warehouse answers, and when its newest payment change happened

Payments are their current state (`fact_payment_current`: the latest version of each payment
still in totesys) with the names from their dimensions. `totes api` serves it; the OpenAPI spec
is at /openapi.json and the docs at /docs. Errors are JSON `{"detail": ...}` and never name the
database: 503 when the warehouse is unreachable or not built yet.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date
from decimal import Decimal
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, Field

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


def create_app(warehouse_url: str) -> FastAPI:
    """The API on one warehouse, with a small connection pool for its lifetime."""
    engine = sa.create_engine(
        sqlalchemy_url(warehouse_url),
        pool_size=4,
        pool_pre_ping=True,  # a restarted warehouse costs one retry, not an error
        connect_args={"connect_timeout": 5},
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        engine.dispose()

    app = FastAPI(
        title="totes payments API",
        version="1.0.0",
        description="Recent and upcoming totesys payments, read from the star-schema warehouse.",
        lifespan=lifespan,
        responses={
            503: {"model": Problem, "description": "The warehouse is unreachable or not built."},
            500: {"model": Problem, "description": "A fault of the API: see its log."},
        },
    )

    def rows(statement: str, **params: Any) -> list[dict[str, Any]]:
        with engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(sa.text(statement), params)]

    @app.get("/payments/last5", summary="The five most recent paid payments")
    def last_paid() -> Payments:
        """Newest payment_date first."""
        return Payments(payments=[Payment(**row) for row in rows(LAST_PAID, limit=5)])

    @app.get("/payments/next5", summary="The next five scheduled payments not paid yet")
    def next_due() -> Payments:
        """Due today (the warehouse's date) or later, soonest first."""
        return Payments(payments=[Payment(**row) for row in rows(NEXT_DUE, limit=5)])

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
