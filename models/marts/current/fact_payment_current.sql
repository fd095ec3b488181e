-- The latest version of each payment: history kept in fact_payment, current state here.
{{ current_versions(ref('fact_payment'), 'payment_id') }}
