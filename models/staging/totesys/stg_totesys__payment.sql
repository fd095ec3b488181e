with

source as (
    select * from {{ source('totesys', 'payment') }}
),

renamed as (
    select
        payment_id::integer as payment_id,
        transaction_id::integer as transaction_id,
        counterparty_id::integer as counterparty_id,
        payment_amount::numeric(10, 2) as payment_amount,
        currency_id::integer as currency_id,
        payment_type_id::integer as payment_type_id,
        paid::boolean as paid,
        payment_date::date as payment_date,
        company_ac_number::integer as company_ac_number,
        counterparty_ac_number::integer as counterparty_ac_number,
        {{ source_timestamp('created_at') }} as created_at,
        {{ source_timestamp('last_updated') }} as last_updated,
        _lake_load_id
    from source
)

{{ dedupe_versions('renamed', 'payment_id') }}
