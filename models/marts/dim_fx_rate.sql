-- What one unit of each currency in dim_currency is worth in pounds, on every day of the
-- calendar from the first published rate on. Rates are published on working days only: any
-- other day (a weekend, a holiday, a day not published yet) carries the last published rate
-- forward, and published_on says which day that was. Pounds are worth one pound every day.

with

rates as (
    select
        rate_date,
        currency_code,
        units_per_gbp
    from {{ ref('stg_fx__rates') }}
    -- an unusable rate is skipped, so the day before carries forward (a test warns about it)
    where units_per_gbp > 0
),

currencies as (
    select distinct currency_code
    from {{ ref('dim_currency') }}
),

calendar as (
    select date_id
    from {{ ref('dim_date') }}
),

foreign_days as (
    select
        calendar.date_id,
        currencies.currency_code,
        rates.rate_date,
        rates.units_per_gbp
    from calendar
    cross join currencies
    left join rates
        on
            calendar.date_id = rates.rate_date
            and currencies.currency_code = rates.currency_code
    where
        currencies.currency_code != 'GBP'
        and calendar.date_id >= (select min(first_rates.rate_date) from rates as first_rates)
),

numbered as (
    -- each publishing day starts a run of days that share its rate
    select
        date_id,
        currency_code,
        rate_date,
        units_per_gbp,
        count(rate_date) over (partition by currency_code order by date_id) as published_days
    from foreign_days
),

carried_forward as (
    select
        date_id,
        currency_code,
        first_value(rate_date) over runs as published_on,
        first_value(units_per_gbp) over runs as units_per_gbp
    from numbered
    window runs as (partition by currency_code, published_days order by date_id)
),

pounds as (
    select
        calendar.date_id,
        currencies.currency_code,
        calendar.date_id as published_on,
        1 as units_per_gbp
    from calendar
    inner join currencies on currencies.currency_code = 'GBP'
),

all_days as (
    select
        date_id,
        currency_code,
        published_on,
        units_per_gbp
    from carried_forward
    -- the days before a currency's first rate have nothing to carry
    where published_on is not null
    union all
    select
        date_id,
        currency_code,
        published_on,
        units_per_gbp
    from pounds
)

select
    date_id,
    published_on,
    currency_code::varchar(3) as currency_code,
    units_per_gbp::numeric(18, 6) as units_per_gbp,
    (1 / units_per_gbp::numeric)::numeric(18, 10) as gbp_per_unit
from all_days
