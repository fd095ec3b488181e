with

source as (
    select * from {{ source('totesys', 'payment_type') }}
),

checked as (
    select
        source.*,
        {{ quarantine_reason(
            'source',
            not_null=['payment_type_name', 'created_at'],
        ) }} as quarantine_reason
    from source
),

renamed as (
    select
        payment_type_id::integer as payment_type_id,
        payment_type_name::varchar as payment_type_name,
        {{ source_timestamp('created_at') }} as created_at,
        {{ source_timestamp('last_updated') }} as last_updated,
        quarantine_reason,
        _lake_load_id
    from checked
)

{{ dedupe_versions('renamed', 'payment_type_id') }}
