{{
    config(
        materialized='incremental',
        on_schema_change='fail',
        indexes=[
            {'columns': ['sales_order_id', 'last_updated_date', 'last_updated_time'], 'unique': True},
            {'columns': ['last_updated_date', 'last_updated_time']},
        ],
    )
}}

-- Append-only history: one row per version of a sales order, never updated or deleted.

with

versions as (
    {{ unseen_versions(ref('stg_totesys__sales_order'), 'sales_order_id') }}
)

select
    {{ next_record_id('sales_record_id', '_lake_load_id::numeric, last_updated, sales_order_id') }}
        as sales_record_id,
    sales_order_id,
    {{ split_timestamp('created_at', 'created') }},
    {{ split_timestamp('last_updated', 'last_updated') }},
    staff_id as sales_staff_id,
    counterparty_id,
    units_sold,
    unit_price,
    currency_id,
    design_id,
    agreed_payment_date,
    agreed_delivery_date,
    agreed_delivery_location_id
from versions
