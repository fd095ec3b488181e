-- The latest version of each payment still in totesys. History, deleted payments
-- included, is in fact_payment.
{{ current_versions(ref('fact_payment'), 'payment_id') }}
