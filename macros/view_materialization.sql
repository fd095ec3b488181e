{#- Views are replaced only when their SQL changed. dbt's own view materialization creates,
    renames and drops on every build, for each of the staging and current views, which costs a
    scheduled run about a second and changes nothing. The view's comment holds the hash of the
    SQL it was built from; a full refresh always rebuilds. -#}
{%- materialization view, adapter='postgres' -%}
    {%- set fingerprint = 'totes sql md5 ' ~ local_md5(sql) -%}
    {%- set existing = load_cached_relation(this) -%}
    {%- if existing is not none and existing.is_view and not should_full_refresh()
        and view_comment(this) == fingerprint -%}
        {%- call noop_statement('main', 'UNCHANGED') -%}{%- endcall -%}
        {{ return({'relations': [this]}) }}
    {%- endif -%}
    {%- set built = dbt.materialization_view_default() -%}
    {%- call statement('fingerprint') -%}
        comment on view {{ this }} is {{ dbt.string_literal(fingerprint) }}
    {%- endcall -%}
    {%- do adapter.commit() -%}
    {{ return(built) }}
{%- endmaterialization -%}

{% macro view_comment(relation) -%}
    {%- set found = run_query(
        "select obj_description(to_regclass("
        ~ dbt.string_literal(relation.include(database=false)) ~ "), 'pg_class')"
    ) -%}
    {{ return(found.columns[0].values()[0] if found.rows else none) }}
{%- endmacro %}
