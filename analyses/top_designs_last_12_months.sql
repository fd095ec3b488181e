-- The 10 designs with the most units sold in the last 12 months of data.

with

sales as (
    select * from {{ ref('fact_sales_order_current') }}
),

window_start as (
    select max(created_date) - interval '12 months' as first_day from sales
)

select
    design.design_id,
    design.design_name,
    sum(sales.units_sold) as units_sold
from sales
inner join {{ ref('dim_design') }} as design
    on sales.design_id = design.design_id
cross join window_start
where sales.created_date > window_start.first_day
group by design.design_id, design.design_name
order by units_sold desc, design.design_id asc
limit 10
