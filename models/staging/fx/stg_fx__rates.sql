-- The newest value loaded for each publishing day and currency: the API may revise a day's
-- rate, and a retried load repeats rows. Until a run has fetched rates the source table does
-- not exist, and this view is empty rather than broken.

{%- set raw = source('fx', 'fx_rate') %}
{%- set raw_exists = adapter.get_relation(raw.database, raw.schema, raw.identifier) is not none %}

with

source as (
    {%- if raw_exists %}
        select
            rate_date,
            currency_code,
            units_per_gbp,
            _lake_load_id
        from {{ raw }}
    {%- else %}
        select
            null::date as rate_date,
            null::varchar as currency_code,
            null::double precision as units_per_gbp,
            null::varchar as _lake_load_id
        where false
    {%- endif %}
)

select distinct on (rate_date, currency_code)
    rate_date::date as rate_date,
    currency_code::varchar(3) as currency_code,
    units_per_gbp::double precision as units_per_gbp,
    _lake_load_id
from source
order by rate_date asc, currency_code asc, _lake_load_id::numeric desc
