{#- A fact's foreign keys in one test: a row for each key value that its dimension lacks (none =
    pass). `keys` maps a fact column to "dimension.column". One query instead of a
    relationships test per column, because each dbt node costs a build a fixed tenth of a second.
    Nulls are not checked here: the contract's not_null constraints do that. -#}
{% test references_dimensions(model, keys) %}
    with

    fact_rows as (
        select * from {{ model }}
    )

    {%- for column, target in keys.items() %}
        {%- set dimension, dimension_column = target.split('.') %}
        select
            '{{ column }}' as column_name,
            fact_rows.{{ adapter.quote(column) }}::text as missing_value
        from fact_rows
        where
            fact_rows.{{ adapter.quote(column) }} is not null
            and not exists (
                select
                from {{ ref(dimension) }} as dimension_rows
                where dimension_rows.{{ adapter.quote(dimension_column) }}
                    = fact_rows.{{ adapter.quote(column) }}
            )
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
{% endtest %}
