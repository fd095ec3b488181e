with

transactions as (
    {{ latest_versions(ref('stg_totesys__transaction'), 'transaction_id') }}
)

select
    transaction_id,
    transaction_type,
    sales_order_id,
    purchase_order_id
from transactions
