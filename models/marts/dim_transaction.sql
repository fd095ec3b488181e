{{
    config(
        materialized='incremental',
        unique_key='transaction_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
    )
}}

-- Incremental: it grows with the orders, so a build replaces only the transactions that changed.

with

transactions as (
    {%- if is_incremental() %}
        {{ changed_latest_versions(ref('stg_totesys__transaction'), 'transaction_id') }}
    {%- else %}
        {{ latest_versions(ref('stg_totesys__transaction'), 'transaction_id') }}
    {%- endif %}
)

select
    transaction_id,
    transaction_type,
    sales_order_id,
    purchase_order_id
from transactions
