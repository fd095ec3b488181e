with

source as (
    select * from {{ source('totesys', 'sales_order') }}
),

checked as (
    select
        source.*,
        {{ quarantine_reason(
            'source',
            not_null=[
                'design_id',
                'staff_id',
                'counterparty_id',
                'units_sold',
                'unit_price',
                'currency_id',
                'agreed_delivery_date',
                'agreed_payment_date',
                'agreed_delivery_location_id',
                'created_at',
            ],
            text_dates=['agreed_delivery_date', 'agreed_payment_date'],
            non_negative=['units_sold', 'unit_price'],
        ) }} as quarantine_reason
    from source
),

renamed as (
    select
        sales_order_id::integer as sales_order_id,
        design_id::integer as design_id,
        staff_id::integer as staff_id,
        counterparty_id::integer as counterparty_id,
        units_sold::integer as units_sold,
        unit_price::numeric(10, 2) as unit_price,
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

{{ dedupe_versions('renamed', 'sales_order_id') }}
