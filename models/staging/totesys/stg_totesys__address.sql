with

source as (
    select * from {{ source('totesys', 'address') }}
),

renamed as (
    select
        address_id::integer as address_id,
        address_line_1::varchar as address_line_1,
        address_line_2::varchar as address_line_2,
        district::varchar as district,
        city::varchar as city,
        postal_code::varchar as postal_code,
        country::varchar as country,
        phone::varchar as phone,
        {{ source_timestamp('created_at') }} as created_at,
        {{ source_timestamp('last_updated') }} as last_updated,
        _lake_load_id
    from source
)

{{ dedupe_versions('renamed', 'address_id') }}
