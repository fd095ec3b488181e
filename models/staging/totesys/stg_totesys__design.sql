with

source as (
    select * from {{ source('totesys', 'design') }}
),

checked as (
    select
        source.*,
        {{ quarantine_reason(
            'source',
            not_null=['design_name', 'file_location', 'file_name', 'created_at'],
        ) }} as quarantine_reason
    from source
),

renamed as (
    select
        design_id::integer as design_id,
        design_name::varchar as design_name,
        file_location::varchar as file_location,
        file_name::varchar as file_name,
        {{ source_timestamp('created_at') }} as created_at,
        {{ source_timestamp('last_updated') }} as last_updated,
        quarantine_reason,
        _lake_load_id
    from checked
)

{{ dedupe_versions('renamed', 'design_id') }}
