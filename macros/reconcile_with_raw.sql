{#- A row for each way a fact disagrees with the raw rows it was built from (none = pass):
    every raw version is a fact row or held in quarantine, and the latest version per id that
    is not held has the same total. Within a `dbt build` that has a window (build_window.sql)
    it compares only the ids loaded since the last complete build; `dbt test` compares all. -#}
{% macro reconcile_with_raw(fact, source_table, id_column, amount) -%}
    {%- set raw = source('totesys', source_table) %}
    {%- set window = build_window() if flags.WHICH == 'build' else none %}
    with

    {%- if window is not none %}
        changed_ids as (
            select distinct {{ id_column }}
            from {{ raw }}
            where _lake_load_id::numeric > {{ window.built_through }}
        ),

        raw_rows as (
            select *
            from {{ raw }}
            -- the cast matches the raw index (build_window.sql)
            where {{ id_column }}::integer in (
                select changed_ids.{{ id_column }}::integer from changed_ids
            )
        ),

        fact_rows as (
            select *
            from {{ ref(fact) }}
            where {{ id_column }} in (select changed_ids.{{ id_column }} from changed_ids)
        ),
    {%- else %}
        raw_rows as (
            select * from {{ raw }}
        ),

        fact_rows as (
            select * from {{ ref(fact) }}
        ),
    {%- endif %}

    deduped as (
        {{ dedupe_versions('raw_rows', id_column) }}
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
        from fact_rows
        order by {{ id_column }} asc, last_updated_date desc, last_updated_time desc
    ),

    measures as (
        select
            'versions' as measure,
            (select count(*) from raw_versions)::numeric as raw_value,
            (select count(*) from fact_rows)::numeric as fact_value
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
