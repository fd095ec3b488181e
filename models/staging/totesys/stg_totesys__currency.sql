with

source as (
    select * from {{ source('totesys', 'currency') }}
),

checked as (
    select
        source.*,
        {{ quarantine_reason(
            'source',
            not_null=['currency_code', 'created_at'],
        ) }} as quarantine_reason
    from source
),

renamed as (
    select
        currency_id::integer as currency_id,
        currency_code::varchar(3) as currency_code,
        {{ source_timestamp('created_at') }} as created_at,
        {{ source_timestamp('last_updated') }} as last_updated,
        quarantine_reason,
        _lake_load_id
    from checked
)

{{ dedupe_versions('renamed', 'currency_id') }}
