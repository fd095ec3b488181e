with

currencies as (
    {{ latest_versions(ref('stg_totesys__currency'), 'currency_id') }}
),

iso_4217 as (
    select * from {{ ref('iso_4217_currencies') }}
)

select
    currencies.currency_id,
    currencies.currency_code::varchar(3) as currency_code,
    -- a code outside ISO 4217 keeps its code as its name (a test warns about it)
    coalesce(iso_4217.currency_name, currencies.currency_code)::varchar as currency_name
from currencies
left join iso_4217
    on currencies.currency_code = iso_4217.currency_code
