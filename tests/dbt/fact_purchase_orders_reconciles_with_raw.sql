{{ reconcile_with_raw(
    'fact_purchase_orders', 'purchase_order', 'purchase_order_id', 'item_quantity * item_unit_price'
) }}
