{{
    config(
        materialized='incremental',
        on_schema_change='fail',
        indexes=[
            {'columns': ['payment_id', 'last_updated_date', 'last_updated_time'], 'unique': True},
            {'columns': ['last_updated_date', 'last_updated_time']},
        ],
    )
}}

-- Append-only history: one row per version of a payment (a payment flipping to paid is a
-- second version), never updated or deleted.

with

versions as (
    {{ unseen_versions(ref('stg_totesys__payment'), 'payment_id') }}
)

select
    {{ next_record_id('payment_record_id', '_lake_load_id::numeric, last_updated, payment_id') }}
        as payment_record_id,
    payment_id,
    {{ split_timestamp('created_at', 'created') }},
    {{ split_timestamp('last_updated', 'last_updated') }},
    transaction_id,
    counterparty_id,
    payment_amount,
    currency_id,
    payment_type_id,
    paid,
    payment_date
from versions
