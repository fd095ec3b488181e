with

source as (
    select * from {{ source('totesys', 'staff') }}
),

checked as (
    select
        source.*,
        {{ quarantine_reason(
            'source',
            not_null=['first_name', 'last_name', 'department_id', 'email_address', 'created_at'],
        ) }} as quarantine_reason
    from source
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
        quarantine_reason,
        _lake_load_id
    from checked
)

{{ dedupe_versions('renamed', 'staff_id') }}
