{#- Surrogate keys that keep increasing across incremental runs, in load order. -#}
{% macro next_record_id(column, order_by) -%}
    {%- if is_incremental() -%}
        ((select coalesce(max({{ column }}), 0) from {{ this }})
        + row_number() over (order by {{ order_by }}))::integer
    {%- else -%}
        (row_number() over (order by {{ order_by }}))::integer
    {%- endif -%}
{%- endmacro %}
