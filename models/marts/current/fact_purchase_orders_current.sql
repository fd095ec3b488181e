-- The latest version of each purchase order still in totesys. History, deleted purchase orders
-- included, is in fact_purchase_orders.
{{ current_versions(ref('fact_purchase_orders'), 'purchase_order_id') }}
