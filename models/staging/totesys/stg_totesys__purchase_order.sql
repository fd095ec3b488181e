with

source as (
    select * from {{ source('totesys', 'purchase_order') }}
),

renamed as (
    select
        purchase_order_id::integer as purchase_order_id,
        staff_id::integer as staff_id,
        counterparty_id::integer as counterparty_id,
        item_code::varchar as item_code,
        item_quantity::integer as item_quantity,
        item_unit_price::numeric(10, 2) as item_unit_price,
        currency_id::integer as currency_id,
        agreed_delivery_date::date as agreed_delivery_date,
        agreed_payment_date::date as agreed_payment_date,
        agreed_delivery_location_id::integer as agreed_delivery_location_id,
        {{ source_timestamp('created_at') }} as created_at,
        {{ source_timestamp('last_updated') }} as last_updated,
        _lake_load_id
    from source
)

{{ dedupe_versions('renamed', 'purchase_order_id') }}
