{{ reconcile_with_raw(
    'fact_sales_order', 'sales_order', 'sales_order_id', 'units_sold * unit_price'
) }}
