{#- A row for each way a fact disagrees with the raw rows it was built from (none = pass):
    every raw version is a fact row, and the latest version per id has the same total. -#}
{% macro reconcile_with_raw(fact, source_table, id_column, amount) -%}
    with

    raw_versions as (
        {{ dedupe_versions(source('totesys', source_table), id_column) }}
    ),

    raw_latest as (
        {{ latest_versions('raw_versions', id_column) }}
    ),

    fact_latest as (
        {{ current_versions(ref(fact), id_column) }}
    ),

    measures as (
        select
            'versions' as measure,
            (select count(*) from raw_versions)::numeric as raw_value,
            (select count(*) from {{ ref(fact) }})::numeric as fact_value
        union all
        select
            'ids' as measure,
            (select count(*) from raw_latest)::numeric as raw_value,
            (select count(*) from fact_latest)::numeric as fact_value
        union all
        select
            'latest total of {{ amount }}' as measure,
            (select sum({{ amount }}) from raw_latest) as raw_value,
            (select sum({{ amount }}) from fact_latest) as fact_value
    )

    select
        measure,
        raw_value,
        fact_value
    from measures
    where raw_value is distinct from fact_value
{%- endmacro %}
