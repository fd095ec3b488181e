{{
    config(
        materialized='incremental',
        on_schema_change='fail',
        alias=var('purchase_order_fact_table'),
        indexes=[
            {'columns': ['purchase_order_id', 'last_updated_date', 'last_updated_time'], 'unique': True},
            {'columns': ['last_updated_date', 'last_updated_time']},
        ],
    )
}}

-- Append-only history: one row per version of a purchase order, never updated or deleted.
-- The table's name comes from the var purchase_order_fact_table (see dbt_project.yml).

with

versions as (
    {{ unseen_versions(ref('stg_totesys__purchase_order'), 'purchase_order_id') }}
)

select
    {{ next_record_id(
        'purchase_record_id', '_lake_load_id::numeric, last_updated, purchase_order_id'
    ) }}
        as purchase_record_id,
    purchase_order_id,
    {{ split_timestamp('created_at', 'created') }},
    {{ split_timestamp('last_updated', 'last_updated') }},
    staff_id,
    counterparty_id,
    item_code,
    item_quantity,
    item_unit_price,
    currency_id,
    agreed_delivery_date,
    agreed_payment_date,
    agreed_delivery_location_id
from versions
