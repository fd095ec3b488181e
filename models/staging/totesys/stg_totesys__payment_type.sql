with

source as (
    select * from {{ source('totesys', 'payment_type') }}
),

renamed as (
    select
        payment_type_id::integer as payment_type_id,
        payment_type_name::varchar as payment_type_name,
        {{ source_timestamp('created_at') }} as created_at,
        {{ source_timestamp('last_updated') }} as last_updated,
        _lake_load_id
    from source
)

{{ dedupe_versions('renamed', 'payment_type_id') }}
