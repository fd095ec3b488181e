-- Each sales staff member's revenue per quarter and currency, with their department; revenue_gbp
-- converts each order at its order date's rate (dim_fx_rate).

select
    staff.staff_id,
    staff.first_name,
    staff.last_name,
    staff.department_name,
    order_date.year,
    order_date.quarter,
    currency.currency_code,
    sum(sales.units_sold * sales.unit_price) as revenue,
    round(sum(sales.units_sold * sales.unit_price * fx.gbp_per_unit), 2) as revenue_gbp
from {{ ref('fact_sales_order_current') }} as sales
inner join {{ ref('dim_staff') }} as staff
    on sales.sales_staff_id = staff.staff_id
inner join {{ ref('dim_date') }} as order_date
    on sales.created_date = order_date.date_id
inner join {{ ref('dim_currency') }} as currency
    on sales.currency_id = currency.currency_id
left join {{ ref('dim_fx_rate') }} as fx
    on
        sales.created_date = fx.date_id
        and currency.currency_code = fx.currency_code
group by
    staff.staff_id,
    staff.first_name,
    staff.last_name,
    staff.department_name,
    order_date.year,
    order_date.quarter,
    currency.currency_code
order by staff.staff_id asc, order_date.year asc, order_date.quarter asc, currency.currency_code asc
