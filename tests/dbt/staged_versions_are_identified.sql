-- Staged totesys versions without what identifies them: their id or their last_updated. One
-- test for the eleven staging views, because every dbt node costs a build a tenth of a second.
-- get_where_subquery scopes each view as it scopes a generic test (macros/test_scope.sql).
{%- for table in totesys_tables() %}
    select
        '{{ table }}' as source_table,
        {{ table }}_id as source_id,
        last_updated
    from {{ get_where_subquery(ref('stg_totesys__' ~ table)) }}
    where {{ table }}_id is null or last_updated is null
    {%- if not loop.last %}
        union all
    {%- endif %}
{%- endfor %}
