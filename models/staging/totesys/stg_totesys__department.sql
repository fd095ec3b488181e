with

source as (
    select * from {{ source('totesys', 'department') }}
),

checked as (
    select
        source.*,
        {{ quarantine_reason(
            'source',
            not_null=['department_name', 'created_at'],
        ) }} as quarantine_reason
    from source
),

renamed as (
    select
        department_id::integer as department_id,
        department_name::varchar as department_name,
        location::varchar as location,
        manager::varchar as manager,
        {{ source_timestamp('created_at') }} as created_at,
        {{ source_timestamp('last_updated') }} as last_updated,
        quarantine_reason,
        _lake_load_id
    from checked
)

{{ dedupe_versions('renamed', 'department_id') }}
