{#- `dbt build` tests what it built; `dbt test` tests everything. Within a build that has a window
    (see build_window.sql), a test of a fact looks at the records added since the last complete
    build (a failed build's records are tested again by the next), and a test of a staging view
    at the versions loaded since then. The rest (dims,
    reference data) are small and tested whole. dbt calls this for every generic test. -#}
{% macro postgres__get_where_subquery(relation) -%}
    {%- set conditions = [config.get('where', '')] %}
    {%- set window = build_window() if flags.WHICH == 'build' else none %}
    {%- if window is not none %}
        {%- set fact = [] %}
        {%- for name, (fact_relation, column) in record_id_columns().items()
            if fact_relation.identifier == relation.identifier
            and fact_relation.schema == relation.schema and name in window.record_ids_built %}
            {%- do fact.append(column ~ ' > ' ~ (window.record_ids_built[name] or 0)) %}
        {%- endfor %}
        {%- if fact %}
            {%- do conditions.append(fact[0]) %}
        {%- elif relation.identifier.startswith('stg_totesys__') %}
            {%- do conditions.append(
                'last_updated >= ' ~ window_start(relation.identifier.replace('stg_totesys__', ''))
            ) %}
        {%- endif %}
    {%- endif %}
    {%- set conditions = conditions | select | list %}
    {%- if conditions %}
        (select * from {{ relation }} where {{ conditions | join(' and ') }}) as dbt_subquery
    {%- else %}
        {{ relation }}
    {%- endif %}
{%- endmacro %}
