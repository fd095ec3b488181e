"""The dashboard: the spec's business questions, in pounds, and the pipeline's health.

A Streamlit script (`totes dashboard` serves it). It reads the star schema's current-state views
and the run ledger of the warehouse that TOTES_WAREHOUSE_URL names, as every totes command does.
Amounts are converted to GBP at the rate of their own day (dim_fx_rate). Queries are cached for
a minute, so a dashboard left open follows the scheduled runs.
"""

from __future__ import annotations

from datetime import UTC, datetime

import altair as alt
import pandas as pd
import psycopg2
import streamlit as st
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import SQLAlchemyError

from ingestion.common.database import scrub
from ingestion.config import describe, load_settings, sqlalchemy_url
from ingestion.errors import TotesError
from ingestion.ops.freshness import SLA_MINUTES
from ingestion.ops.status import Status, read_status

# SVG rather than canvas: sharp text, and marks a browser test can count (tests/test_dashboard.py)
SVG = {"embedOptions": {"renderer": "svg"}}
CURRENCY_COLOURS = alt.Scale(domain=["GBP", "EUR", "USD"], range=["#1f4e79", "#e69f00", "#2a9d8f"])

# a sales order's value in pounds, at the rate of the day it was placed
SALES_GBP = """
    from fact_sales_order_current as sales
    inner join dim_currency as currency on sales.currency_id = currency.currency_id
    inner join dim_fx_rate as fx
        on sales.created_date = fx.date_id and currency.currency_code = fx.currency_code
"""
QUERIES = {
    "monthly_revenue": f"""
        select date_trunc('month', sales.created_date)::date as month, currency.currency_code,
            sum(sales.units_sold * sales.unit_price * fx.gbp_per_unit)::float as revenue_gbp
        {SALES_GBP}
        group by 1, 2 order by 1, 2
    """,
    "revenue_by_country": f"""
        with by_country as (
            select location.country, currency.currency_code,
                sum(sales.units_sold * sales.unit_price * fx.gbp_per_unit)::float as revenue_gbp
            {SALES_GBP}
            inner join dim_location as location
                on sales.agreed_delivery_location_id = location.location_id
            group by 1, 2
        ),
        top_countries as (
            select country from by_country group by country
            order by sum(revenue_gbp) desc limit 10
        )
        select * from by_country where country in (select country from top_countries)
    """,  # noqa: S608 (SALES_GBP is this module's constant; nothing comes from input)
    "top_designs": """
        with sales as (select * from fact_sales_order_current),
        window_start as (select max(created_date) - interval '12 months' as day from sales)
        select design.design_name, sum(sales.units_sold)::int as units_sold
        from sales
        inner join dim_design as design on sales.design_id = design.design_id
        cross join window_start
        where sales.created_date > window_start.day
        group by 1 order by 2 desc, 1 limit 10
    """,
    "staff_revenue": f"""
        select staff.first_name || ' ' || staff.last_name as staff_member,
            staff.department_name,
            sum(sales.units_sold * sales.unit_price * fx.gbp_per_unit)::float as revenue_gbp
        {SALES_GBP}
        inner join dim_staff as staff on sales.sales_staff_id = staff.staff_id
        group by 1, 2 order by 3 desc limit 10
    """,
    "outstanding_payments": """
        select counterparty.counterparty_legal_name as counterparty,
            case when payment.payment_date < current_date then 'overdue' else 'scheduled'
            end as due,
            sum(payment.payment_amount * fx.gbp_per_unit)::float as amount_gbp,
            count(*) as payments
        from fact_payment_current as payment
        inner join dim_counterparty as counterparty
            on payment.counterparty_id = counterparty.counterparty_id
        inner join dim_currency as currency on payment.currency_id = currency.currency_id
        inner join dim_fx_rate as fx
            on payment.payment_date = fx.date_id and currency.currency_code = fx.currency_code
        where not payment.paid
        group by 1, 2
    """,
    "purchase_spend": """
        select counterparty.counterparty_legal_name as supplier, currency.currency_code,
            sum(purchases.item_quantity * purchases.item_unit_price * fx.gbp_per_unit)::float
                as spend_gbp
        from fact_purchase_orders_current as purchases
        inner join dim_counterparty as counterparty
            on purchases.counterparty_id = counterparty.counterparty_id
        inner join dim_currency as currency on purchases.currency_id = currency.currency_id
        inner join dim_fx_rate as fx
            on purchases.created_date = fx.date_id and currency.currency_code = fx.currency_code
        group by 1, 2
    """,
}


@st.cache_resource
def _engine(url: str) -> Engine:
    return create_engine(sqlalchemy_url(url), pool_pre_ping=True)


@st.cache_data(ttl=60, show_spinner=False)
def frame(url: str, name: str) -> pd.DataFrame:
    with _engine(url).connect() as connection:
        result = connection.execute(text(QUERIES[name]))
        return pd.DataFrame(result.fetchall(), columns=list(result.keys()))


@st.cache_data(ttl=60, show_spinner=False)
def pipeline_status(url: str) -> Status:
    return read_status(url, runs=30)


def gbp(amount: float) -> str:
    return f"£{amount / 1e6:,.2f}m" if abs(amount) >= 1e6 else f"£{amount:,.0f}"


def top_ten(data: pd.DataFrame, key: str, amount: str) -> pd.Index:
    return data.groupby(key)[amount].sum().nlargest(10).index


def chart(spec: alt.Chart, title: str, caption: str) -> None:
    st.subheader(title)
    st.altair_chart(spec.properties(usermeta=SVG, height=320), width="stretch")
    st.caption(caption)


def business(url: str) -> None:
    monthly = frame(url, "monthly_revenue")
    if monthly.empty:
        st.info("The warehouse holds no sales orders yet.")
        return
    unpaid = frame(url, "outstanding_payments")
    last_month = monthly["month"].max()
    overdue = unpaid.loc[unpaid["due"] == "overdue", "amount_gbp"].sum()
    metrics = st.columns(4)
    metrics[0].metric("Revenue, all time", gbp(monthly["revenue_gbp"].sum()))
    metrics[1].metric(
        f"Revenue, {last_month:%B %Y}",
        gbp(monthly.loc[monthly["month"] == last_month, "revenue_gbp"].sum()),
    )
    metrics[2].metric("Outstanding payments", gbp(unpaid["amount_gbp"].sum()))
    metrics[3].metric("of which overdue", gbp(overdue))

    left, right = st.columns(2)
    with left:
        chart(
            alt.Chart(monthly)
            .mark_bar()
            .encode(
                x=alt.X("yearmonth(month):T", title=None),
                y=alt.Y("revenue_gbp:Q", title="revenue (GBP)", axis=alt.Axis(format="~s")),
                color=alt.Color("currency_code:N", title="currency", scale=CURRENCY_COLOURS),
                tooltip=[
                    "yearmonth(month):T",
                    "currency_code",
                    alt.Tooltip("revenue_gbp:Q", format=",.0f"),
                ],
            ),
            "Monthly revenue by currency",
            "Sales orders, latest version of each, valued in GBP on the day they were placed.",
        )
    with right:
        chart(
            alt.Chart(frame(url, "revenue_by_country"))
            .mark_bar()
            .encode(
                y=alt.Y("country:N", sort="-x", title=None),
                x=alt.X("sum(revenue_gbp):Q", title="revenue (GBP)", axis=alt.Axis(format="~s")),
                color=alt.Color("currency_code:N", title="currency", scale=CURRENCY_COLOURS),
                tooltip=["country", "currency_code", alt.Tooltip("revenue_gbp:Q", format=",.0f")],
            ),
            "Revenue by delivery country (top 10)",
            "The country of each order's agreed delivery location, all time.",
        )
    left, right = st.columns(2)
    with left:
        chart(
            alt.Chart(frame(url, "top_designs"))
            .mark_bar(color="#1f4e79")
            .encode(
                y=alt.Y("design_name:N", sort="-x", title=None),
                x=alt.X("units_sold:Q", title="units sold"),
                tooltip=["design_name", "units_sold"],
            ),
            "Top 10 designs",
            "Units sold in the last 12 months of data.",
        )
    with right:
        chart(
            alt.Chart(frame(url, "staff_revenue"))
            .mark_bar()
            .encode(
                y=alt.Y("staff_member:N", sort="-x", title=None),
                x=alt.X("revenue_gbp:Q", title="revenue (GBP)", axis=alt.Axis(format="~s")),
                color=alt.Color("department_name:N", title="department"),
                tooltip=[
                    "staff_member",
                    "department_name",
                    alt.Tooltip("revenue_gbp:Q", format=",.0f"),
                ],
            ),
            "Sales staff performance (top 10)",
            "Revenue of each staff member's orders in GBP, all time, coloured by department.",
        )
    left, right = st.columns(2)
    with left:
        chart(
            alt.Chart(
                unpaid[unpaid["counterparty"].isin(top_ten(unpaid, "counterparty", "amount_gbp"))]
            )
            .mark_bar()
            .encode(
                y=alt.Y("counterparty:N", sort="-x", title=None),
                x=alt.X("sum(amount_gbp):Q", title="outstanding (GBP)", axis=alt.Axis(format="~s")),
                color=alt.Color(
                    "due:N",
                    scale=alt.Scale(domain=["overdue", "scheduled"], range=["#c0392b", "#95a5a6"]),
                ),
                tooltip=[
                    "counterparty",
                    "due",
                    "payments",
                    alt.Tooltip("amount_gbp:Q", format=",.0f"),
                ],
            ),
            "Outstanding payments (top 10 counterparties)",
            "Unpaid payments, latest version of each; overdue when the payment date has passed.",
        )
    with right:
        spend = frame(url, "purchase_spend")
        chart(
            alt.Chart(spend[spend["supplier"].isin(top_ten(spend, "supplier", "spend_gbp"))])
            .mark_bar()
            .encode(
                y=alt.Y("supplier:N", sort="-x", title=None),
                x=alt.X("sum(spend_gbp):Q", title="spend (GBP)", axis=alt.Axis(format="~s")),
                color=alt.Color("currency_code:N", title="currency", scale=CURRENCY_COLOURS),
                tooltip=["supplier", "currency_code", alt.Tooltip("spend_gbp:Q", format=",.0f")],
            ),
            "Purchase spend (top 10 suppliers)",
            "Purchase orders, latest version of each, valued in GBP on the day they were raised.",
        )


def pipeline_health(url: str) -> None:
    status = pipeline_status(url)
    st.header("Pipeline health")
    if not status.runs:
        st.info("No run is recorded yet: `totes run` records each run in the ledger.")
        return
    last = status.runs[0]
    age_minutes = (datetime.now(UTC) - last.started_at).total_seconds() / 60
    worst = max(status.lags.values(), default=float("inf")) / 60
    metrics = st.columns(3)
    metrics[0].metric(f"Last run, {age_minutes:,.0f} min ago", last.status)
    metrics[1].metric(f"Largest freshness lag (SLA {SLA_MINUTES} min)", f"{worst:,.1f} min")
    metrics[2].metric("Tables behind the SLA", len(status.behind))
    st.caption(f"Next step: {status.next_step()}")

    runs = pd.DataFrame(
        {
            "started": [f"{run.started_at.astimezone(UTC):%d %b %H:%M:%S}" for run in status.runs],
            "command": [run.command for run in status.runs],
            "status": [run.status for run in status.runs],
            # float: a Decimal reached the chart ten times too big (21.4 s drew as 214)
            "seconds": [float(run.seconds or 0) for run in status.runs],
            "extracted": [run.extracted for run in status.runs],
            "loaded": [run.loaded for run in status.runs],
            "exported": [run.exported for run in status.runs],
            "error": [run.error or "" for run in status.runs],
        }
    )
    lags = pd.DataFrame(
        {"table": list(status.lags), "lag_minutes": [lag / 60 for lag in status.lags.values()]}
    )
    left, right = st.columns(2)
    with left:
        chart(
            alt.Chart(runs.iloc[::-1])  # oldest on the left
            .mark_bar()
            .encode(
                x=alt.X(
                    "started:O", sort=None, title="started (UTC)", axis=alt.Axis(labelAngle=-45)
                ),
                y=alt.Y("seconds:Q", title="seconds"),
                color=alt.Color(
                    "status:N",
                    scale=alt.Scale(
                        domain=["succeeded", "failed", "skipped", "stopped", "running"],
                        range=["#2a9d8f", "#c0392b", "#95a5a6", "#5d6d7e", "#e69f00"],
                    ),
                ),
                tooltip=["started", "command", "status", "seconds", "extracted", "error"],
            ),
            "Last runs",
            "Wall time of the newest 30 runs (the run ledger, ops.pipeline_runs).",
        )
    with right:
        sla = (
            alt.Chart(pd.DataFrame({"sla": [SLA_MINUTES]}))
            .mark_rule(color="#c0392b", strokeDash=[4, 4])
            .encode(x="sla:Q")
        )
        bars = (
            alt.Chart(lags)
            .mark_bar(color="#1f4e79")
            .encode(
                y=alt.Y("table:N", sort="-x", title=None),
                x=alt.X("lag_minutes:Q", title="minutes since caught up"),
                tooltip=["table", alt.Tooltip("lag_minutes:Q", format=",.1f")],
            )
        )
        chart(
            alt.layer(bars, sla),
            "Freshness lag by source table",
            "Minutes since the start of the newest run that caught each table up; "
            f"the dashed line is the {SLA_MINUTES}-minute SLA.",
        )
    st.dataframe(runs, hide_index=True, width="stretch")


def main() -> None:
    st.set_page_config(page_title="totes: sales and pipeline", layout="wide")
    settings = load_settings()
    url = settings.warehouse_url
    st.title("totes: sales, payments and purchases")
    st.caption(
        f"Warehouse {describe(url)}. Amounts in GBP at each day's rate (dim_fx_rate); "
        "the figures refresh every minute."
    )
    try:
        business(url)
        pipeline_health(url)
    except (SQLAlchemyError, psycopg2.Error, TotesError) as error:
        cause = scrub(str(getattr(error, "orig", None) or error).strip().splitlines()[0], url)
        st.error(
            f"The warehouse at {describe(url)} cannot answer: {cause}. "
            "Is it running, and has `totes run` built the star schema?"
        )


main()
