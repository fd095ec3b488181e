{{ reconcile_with_raw('fact_payment', 'payment', 'payment_id', 'payment_amount') }}
