{{ config(materialized='table') }}

-- Every source version held out of the marts, with why. A held version goes on by itself once it
-- passes (say its parent arrives). A superseded one never will: a newer, valid version of the
-- same row replaced it in the warehouse. `totes quarantine list` reads this table.
--
-- A build with a window (macros/build_window.sql) looks again only at what can have changed: the
-- versions this table held, and the versions loaded since the last complete build. Superseded
-- versions stay as they were (a valid newer version never goes away).

{%- set tables = totesys_tables() %}
{%- set previous = held_versions_relation() %}
{%- set windowed = previous is not none and build_window() is not none %}

with

{% for table in tables %}
    {%- set staged = ref('stg_totesys__' ~ table) %}
    {%- set id_column = table ~ '_id' %}
    {{ table }}_checked as (
        select
            staged.{{ id_column }} as source_id,
            staged.last_updated,
            staged._lake_load_id,
            nullif(
                concat_ws(
                    '; ',
                    staged.quarantine_reason,
                    {{ missing_references('staged', table, few_rows=windowed) }}
                ),
                ''
            ) as reason,
            to_jsonb(staged) - 'quarantine_reason' - '_lake_load_id' as row_values
        {%- if windowed %}
            from ({{ candidate_versions(staged, id_column, windowed=true) }}) as staged
        {%- else %}
            from {{ staged }} as staged
        {%- endif %}
    ),
{% endfor %}

held as (
    {% for table in tables %}
        {%- set staged = ref('stg_totesys__' ~ table) %}
        {%- set id_column = table ~ '_id' %}
        select
            '{{ table }}'::varchar as source_table,
            bad.source_id,
            bad.last_updated,
            bad.reason,
            (case
                when newer.{{ table }}_id is not null then 'superseded'
                else 'held'
            end)::varchar as status,
            bad._lake_load_id as lake_load_id,
            bad.row_values
        from {{ table }}_checked as bad
        -- a valid newer version of the row, if any: a lookup per held version (they are few)
        left join lateral (
            {{ newer_valid_version(staged, id_column, 'bad.source_id', 'bad.last_updated') }}
        ) as newer on true
        where bad.reason is not null
        {% if not loop.last %}union all{% endif %}
    {%- endfor %}
)

select * from held
{%- if windowed %}
    union all
    select
        earlier.source_table,
        earlier.source_id,
        earlier.last_updated,
        earlier.reason,
        earlier.status,
        earlier.lake_load_id,
        earlier.row_values
    from {{ previous }} as earlier
    where
        earlier.status = 'superseded'
        and not exists (
            select 1
            from held
            where
                held.source_table = earlier.source_table
                and held.source_id = earlier.source_id
                and held.last_updated = earlier.last_updated
        )
{%- endif %}
