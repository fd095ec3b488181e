with

source as (
    select * from {{ source('totesys', 'transaction') }}
),

checked as (
    select
        source.*,
        {{ quarantine_reason(
            'source',
            not_null=['transaction_type', 'created_at'],
        ) }} as quarantine_reason
    from source
),

renamed as (
    select
        transaction_id::integer as transaction_id,
        transaction_type::varchar as transaction_type,
        sales_order_id::integer as sales_order_id,
        purchase_order_id::integer as purchase_order_id,
        {{ source_timestamp('created_at') }} as created_at,
        {{ source_timestamp('last_updated') }} as last_updated,
        quarantine_reason,
        _lake_load_id
    from checked
)

{{ dedupe_versions('renamed', 'transaction_id') }}
