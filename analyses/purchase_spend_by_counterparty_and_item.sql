-- Purchase spend (item_quantity x item_unit_price) per supplier, item code and currency.

select
    counterparty.counterparty_legal_name,
    purchases.item_code,
    currency.currency_code,
    sum(purchases.item_quantity) as items,
    sum(purchases.item_quantity * purchases.item_unit_price) as spend
from {{ ref('fact_purchase_orders_current') }} as purchases
inner join {{ ref('dim_counterparty') }} as counterparty
    on purchases.counterparty_id = counterparty.counterparty_id
inner join {{ ref('dim_currency') }} as currency
    on purchases.currency_id = currency.currency_id
group by counterparty.counterparty_legal_name, purchases.item_code, currency.currency_code
order by spend desc
