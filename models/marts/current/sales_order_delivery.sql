-- Each current sales order the delivery partner has reported on: where its delivery stands,
-- and whether it arrived by the agreed day. Events are taken at their latest version.

with

events as (
    select distinct on (event_id) *
    from {{ ref('fact_delivery_event') }}
    order by event_id asc, last_updated_date desc, last_updated_time desc
),

latest as (
    select distinct on (sales_order_id)
        sales_order_id,
        event_type,
        event_date,
        carrier
    from events
    order by sales_order_id asc, event_date desc, event_time desc, event_id desc
),

delivered as (
    select
        sales_order_id,
        min(event_date) as delivered_date,
        sum(units)::integer as units_delivered
    from events
    where event_type = 'delivered'
    group by sales_order_id
)

select
    orders.sales_order_id,
    orders.design_id,
    designs.design_name,
    orders.agreed_delivery_location_id,
    locations.city as delivery_city,
    orders.units_sold,
    orders.agreed_delivery_date,
    latest.event_type as latest_event_type,
    latest.event_date as latest_event_date,
    latest.carrier,
    delivered.delivered_date,
    coalesce(delivered.units_delivered, 0) as units_delivered,
    delivered.delivered_date <= orders.agreed_delivery_date as delivered_on_time
from {{ ref('fact_sales_order_current') }} as orders
inner join latest on orders.sales_order_id = latest.sales_order_id
left join delivered on orders.sales_order_id = delivered.sales_order_id
left join {{ ref('dim_design') }} as designs on orders.design_id = designs.design_id
left join {{ ref('dim_location') }} as locations
    on orders.agreed_delivery_location_id = locations.location_id
