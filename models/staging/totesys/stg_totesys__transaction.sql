with

source as (
    select * from {{ source('totesys', 'transaction') }}
),

renamed as (
    select
        transaction_id::integer as transaction_id,
        transaction_type::varchar as transaction_type,
        sales_order_id::integer as sales_order_id,
        purchase_order_id::integer as purchase_order_id,
        {{ source_timestamp('created_at') }} as created_at,
        {{ source_timestamp('last_updated') }} as last_updated,
        _lake_load_id
    from source
)

{{ dedupe_versions('renamed', 'transaction_id') }}
