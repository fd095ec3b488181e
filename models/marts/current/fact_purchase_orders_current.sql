-- The latest version of each purchase order: history kept in fact_purchase_orders,
-- current state here.
{{ current_versions(ref('fact_purchase_orders'), 'purchase_order_id') }}
