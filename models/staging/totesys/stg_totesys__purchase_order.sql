with

source as (
    select * from {{ source('totesys', 'purchase_order') }}
),

checked as (
    select
        source.*,
        {{ quarantine_reason(
            'source',
            not_null=[
                'staff_id',
                'counterparty_id',
                'item_code',
                'item_quantity',
                'item_unit_price',
                'currency_id',
                'agreed_delivery_date',
                'agreed_payment_date',
                'agreed_delivery_location_id',
                'created_at',
            ],
            text_dates=['agreed_delivery_date', 'agreed_payment_date'],
            non_negative=['item_quantity', 'item_unit_price'],
        ) }} as quarantine_reason
    from source
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
        {{ text_date('agreed_delivery_date') }} as agreed_delivery_date,
        {{ text_date('agreed_payment_date') }} as agreed_payment_date,
        agreed_delivery_location_id::integer as agreed_delivery_location_id,
        {{ source_timestamp('created_at') }} as created_at,
        {{ source_timestamp('last_updated') }} as last_updated,
        quarantine_reason,
        _lake_load_id
    from checked
)

{{ dedupe_versions('renamed', 'purchase_order_id') }}
