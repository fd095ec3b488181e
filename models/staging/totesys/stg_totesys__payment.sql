with

source as (
    select * from {{ source('totesys', 'payment') }}
),

checked as (
    select
        source.*,
        {{ quarantine_reason(
            'source',
            not_null=[
                'transaction_id',
                'counterparty_id',
                'payment_amount',
                'currency_id',
                'payment_type_id',
                'paid',
                'payment_date',
                'company_ac_number',
                'counterparty_ac_number',
                'created_at',
            ],
            text_dates=['payment_date'],
        ) }} as quarantine_reason
    from source
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
        {{ text_date('payment_date') }} as payment_date,
        company_ac_number::integer as company_ac_number,
        counterparty_ac_number::integer as counterparty_ac_number,
        {{ source_timestamp('created_at') }} as created_at,
        {{ source_timestamp('last_updated') }} as last_updated,
        quarantine_reason,
        _lake_load_id
    from checked
)

{{ dedupe_versions('renamed', 'payment_id') }}
