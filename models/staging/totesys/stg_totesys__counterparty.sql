with

source as (
    select * from {{ source('totesys', 'counterparty') }}
),

checked as (
    select
        source.*,
        {{ quarantine_reason(
            'source',
            not_null=['counterparty_legal_name', 'legal_address_id', 'created_at'],
        ) }} as quarantine_reason
    from source
),

renamed as (
    select
        counterparty_id::integer as counterparty_id,
        counterparty_legal_name::varchar as counterparty_legal_name,
        legal_address_id::integer as legal_address_id,
        commercial_contact::varchar as commercial_contact,
        delivery_contact::varchar as delivery_contact,
        {{ source_timestamp('created_at') }} as created_at,
        {{ source_timestamp('last_updated') }} as last_updated,
        quarantine_reason,
        _lake_load_id
    from checked
)

{{ dedupe_versions('renamed', 'counterparty_id') }}
