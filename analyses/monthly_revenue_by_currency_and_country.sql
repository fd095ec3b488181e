-- Monthly revenue (units_sold x unit_price) per currency and per delivery country.
-- Amounts stay in their own currency: summing GBP, USD and EUR together would be meaningless.

select
    order_date.year,
    order_date.month,
    currency.currency_code,
    location.country as delivery_country,
    sum(sales.units_sold * sales.unit_price) as revenue,
    count(*) as orders
from {{ ref('fact_sales_order_current') }} as sales
inner join {{ ref('dim_date') }} as order_date
    on sales.created_date = order_date.date_id
inner join {{ ref('dim_currency') }} as currency
    on sales.currency_id = currency.currency_id
inner join {{ ref('dim_location') }} as location
    on sales.agreed_delivery_location_id = location.location_id
group by order_date.year, order_date.month, currency.currency_code, location.country
order by order_date.year asc, order_date.month asc, currency.currency_code asc, revenue desc
