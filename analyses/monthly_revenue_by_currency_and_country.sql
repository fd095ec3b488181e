-- Monthly revenue (units_sold x unit_price) per currency and per delivery country. revenue is in
-- the order's own currency; revenue_gbp converts each order at its order date's rate
-- (dim_fx_rate), so the GBP figures of different currencies can be added up. It is null for an
-- order dated before the first rate.

select
    order_date.year,
    order_date.month,
    currency.currency_code,
    location.country as delivery_country,
    sum(sales.units_sold * sales.unit_price) as revenue,
    round(sum(sales.units_sold * sales.unit_price * fx.gbp_per_unit), 2) as revenue_gbp,
    count(*) as orders
from {{ ref('fact_sales_order_current') }} as sales
inner join {{ ref('dim_date') }} as order_date
    on sales.created_date = order_date.date_id
inner join {{ ref('dim_currency') }} as currency
    on sales.currency_id = currency.currency_id
inner join {{ ref('dim_location') }} as location
    on sales.agreed_delivery_location_id = location.location_id
left join {{ ref('dim_fx_rate') }} as fx
    on
        sales.created_date = fx.date_id
        and currency.currency_code = fx.currency_code
group by order_date.year, order_date.month, currency.currency_code, location.country
order by order_date.year asc, order_date.month asc, currency.currency_code asc, revenue desc
