with

source as (
    select * from {{ source('totesys', 'currency') }}
),

renamed as (
    select
        currency_id::integer as currency_id,
        currency_code::varchar(3) as currency_code,
        {{ source_timestamp('created_at') }} as created_at,
        {{ source_timestamp('last_updated') }} as last_updated,
        _lake_load_id
    from source
)

{{ dedupe_versions('renamed', 'currency_id') }}
