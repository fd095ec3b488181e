with

source as (
    select * from {{ source('totesys', 'design') }}
),

renamed as (
    select
        design_id::integer as design_id,
        design_name::varchar as design_name,
        file_location::varchar as file_location,
        file_name::varchar as file_name,
        {{ source_timestamp('created_at') }} as created_at,
        {{ source_timestamp('last_updated') }} as last_updated,
        _lake_load_id
    from source
)

{{ dedupe_versions('renamed', 'design_id') }}
