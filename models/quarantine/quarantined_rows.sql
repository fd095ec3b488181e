{{ config(materialized='table') }}

-- Every source version held out of the marts, with why. A held version goes on by itself once it
-- passes (say its parent arrives). A superseded one never will: a newer, valid version of the
-- same row replaced it in the warehouse. `totes quarantine list` reads this table.

{%- set tables = totesys_tables() %}

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
                    '; ', staged.quarantine_reason, {{ missing_references('staged', table) }}
                ),
                ''
            ) as reason,
            to_jsonb(staged) - 'quarantine_reason' - '_lake_load_id' as row_values
        from {{ staged }} as staged
    ),

    {{ table }}_latest as (
        {{ latest_versions(staged, id_column) }}
    ),
{% endfor %}

held as (
    {% for table in tables %}
        select
            '{{ table }}'::varchar as source_table,
            bad.source_id,
            bad.last_updated,
            bad.reason,
            (case
                when latest.last_updated > bad.last_updated then 'superseded'
                else 'held'
            end)::varchar as status,
            bad._lake_load_id as lake_load_id,
            bad.row_values
        from {{ table }}_checked as bad
        left join {{ table }}_latest as latest
            on bad.source_id = latest.{{ table }}_id
        where bad.reason is not null
        {% if not loop.last %}union all{% endif %}
    {%- endfor %}
)

select * from held
