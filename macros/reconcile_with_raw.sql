{#- A row for each way a fact disagrees with the raw rows it was built from (none = pass):
    every raw version is a fact row or held in quarantine, and the latest version per id that
    is not held has the same total. -#}
{% macro reconcile_with_raw(fact, source_table, id_column, amount) -%}
    with

    deduped as (
        {{ dedupe_versions(source('totesys', source_table), id_column) }}
    ),

    raw_versions as (
        select deduped.*
        from deduped
        where not exists (
            select 1
            from {{ ref('quarantined_rows') }} as held
            where
                held.source_table = '{{ source_table }}'
                and held.source_id = deduped.{{ id_column }}
                and held.last_updated = {{ source_timestamp('deduped.last_updated') }}
        )
    ),

    raw_latest as (
        select distinct on ({{ id_column }}) *
        from raw_versions
        order by {{ id_column }} asc, last_updated desc
    ),

    fact_latest as (
        select distinct on ({{ id_column }}) *
        from {{ ref(fact) }}
        order by {{ id_column }} asc, last_updated_date desc, last_updated_time desc
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
