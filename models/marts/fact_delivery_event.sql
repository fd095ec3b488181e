{{
    config(
        materialized='incremental',
        on_schema_change='fail',
        indexes=[
            {'columns': ['event_id', 'last_updated_date', 'last_updated_time'], 'unique': True},
            {'columns': ['sales_order_id']},
        ],
    )
}}

-- Append-only history of the delivery partner's events: one row per version of an event (an
-- event sent again with other values is a second version), never updated or deleted. Files are
-- few and small, so each build compares all of staging with what the fact holds.

with

versions as (
    select staged.*
    from {{ ref('stg_deliveries__delivery_event') }} as staged
    {%- if is_incremental() %}
        where not exists (
            select 1
            from {{ this }} as seen
            where
                seen.event_id = staged.event_id
                and seen.last_updated_date = staged.last_updated::date
                and seen.last_updated_time = staged.last_updated::time
        )
    {%- endif %}
)

select
    {{ next_record_id(
        'delivery_event_record_id', '_lake_load_id::numeric, last_updated, event_id'
    ) }} as delivery_event_record_id,
    event_id,
    sales_order_id,
    event_type,
    {{ split_timestamp('event_at', 'event') }},
    units,
    carrier,
    source_file,
    {{ split_timestamp('last_updated', 'last_updated') }}
from versions
