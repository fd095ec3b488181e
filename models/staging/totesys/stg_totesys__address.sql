with

source as (
    select * from {{ source('totesys', 'address') }}
),

checked as (
    select
        source.*,
        {{ quarantine_reason(
            'source',
            not_null=['address_line_1', 'city', 'postal_code', 'country', 'phone', 'created_at'],
        ) }} as quarantine_reason
    from source
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
        quarantine_reason,
        _lake_load_id
    from checked
)

{{ dedupe_versions('renamed', 'address_id') }}
