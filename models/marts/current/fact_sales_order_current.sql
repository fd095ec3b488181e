-- The latest version of each sales_order: history kept in fact_sales_order, current state here.
{{ current_versions(ref('fact_sales_order'), 'sales_order_id') }}
