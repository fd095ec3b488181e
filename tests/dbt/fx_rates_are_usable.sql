-- FX rates dim_fx_rate cannot use: it skips them and carries the previous day's rate forward.
{{ config(severity='warn') }}

select
    rate_date,
    currency_code,
    units_per_gbp,
    _lake_load_id
from {{ ref('stg_fx__rates') }}
where
    rate_date is null
    or currency_code is null
    or coalesce(units_per_gbp, 0) <= 0
