-- The latest version of each sales order still in totesys. History, deleted sales orders
-- included, is in fact_sales_order.
{{ current_versions(ref('fact_sales_order'), 'sales_order_id') }}
