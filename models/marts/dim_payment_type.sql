with

payment_types as (
    {{ latest_versions(ref('stg_totesys__payment_type'), 'payment_type_id') }}
)

select
    payment_type_id,
    payment_type_name
from payment_types
