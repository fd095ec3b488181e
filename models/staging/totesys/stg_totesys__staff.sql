with

source as (
    select * from {{ source('totesys', 'staff') }}
),

renamed as (
    select
        staff_id::integer as staff_id,
        first_name::varchar as first_name,
        last_name::varchar as last_name,
        department_id::integer as department_id,
        email_address::varchar as email_address,
        {{ source_timestamp('created_at') }} as created_at,
        {{ source_timestamp('last_updated') }} as last_updated,
        _lake_load_id
    from source
)

{{ dedupe_versions('renamed', 'staff_id') }}
