-- A gapless calendar over whole years, covering every date any fact row refers to.

{%- set fact_date_columns = {
    'fact_sales_order': [
        'created_date', 'last_updated_date', 'agreed_payment_date', 'agreed_delivery_date',
    ],
    'fact_purchase_orders': [
        'created_date', 'last_updated_date', 'agreed_payment_date', 'agreed_delivery_date',
    ],
    'fact_payment': ['created_date', 'last_updated_date', 'payment_date'],
    'fact_delivery_event': ['event_date', 'last_updated_date'],
} %}

{#- in a build with a window, the calendar it had plus the dates of the records just added -#}
{%- set window = build_window() if load_relation(this) is not none else none %}
{%- set record_ids = record_id_columns() %}

with

fact_dates as (
    {% for fact, columns in fact_date_columns.items() %}
        {%- for column in columns %}
            select
                min({{ column }}) as first_date,
                max({{ column }}) as last_date
            from {{ ref(fact) }}
            {%- if window is not none and window.record_ids_built.get(fact) is not none %}
                where {{ record_ids[fact][1] }} > {{ window.record_ids_built[fact] }}
            {%- endif %}
            {% if not loop.last %}union all{% endif %}
        {%- endfor %}
        {% if not loop.last %}union all{% endif %}
    {%- endfor %}
    {%- if window is not none %}
        union all
        select
            min(date_id) as first_date,
            max(date_id) as last_date
        from {{ this }}
    {%- endif %}
),

bounds as (
    select
        date_trunc('year', coalesce(min(first_date), current_date))::date as first_day,
        (
            date_trunc('year', coalesce(max(last_date), current_date))
            + interval '1 year - 1 day'
        )::date as last_day
    from fact_dates
),

days as (
    select generate_series(bounds.first_day, bounds.last_day, interval '1 day')::date as date_id
    from bounds
)

select
    date_id,
    extract(year from date_id)::integer as year,
    extract(month from date_id)::integer as month,
    extract(day from date_id)::integer as day,
    extract(isodow from date_id)::integer as day_of_week,
    to_char(date_id, 'FMDay')::varchar as day_name,
    to_char(date_id, 'FMMonth')::varchar as month_name,
    extract(quarter from date_id)::integer as quarter
from days
