with

source as (
    select * from {{ source('totesys', 'department') }}
),

renamed as (
    select
        department_id::integer as department_id,
        department_name::varchar as department_name,
        location::varchar as location,
        manager::varchar as manager,
        {{ source_timestamp('created_at') }} as created_at,
        {{ source_timestamp('last_updated') }} as last_updated,
        _lake_load_id
    from source
)

{{ dedupe_versions('renamed', 'department_id') }}
