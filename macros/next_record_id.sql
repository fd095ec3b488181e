{#- Surrogate keys that keep increasing across incremental runs, in load order. Order by the
    version's first lake load first: then a full refresh numbers versions as the runs did. -#}
{% macro next_record_id(column, order_by) -%}
    {%- if is_incremental() -%}
        ((select coalesce(max({{ column }}), 0) from {{ this }})
        + row_number() over (order by {{ order_by }}))::integer
    {%- else -%}
        (row_number() over (order by {{ order_by }}))::integer
    {%- endif -%}
{%- endmacro %}
