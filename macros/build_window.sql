{#- Incremental builds read only what is new in raw, so a build costs what changed, not what
    history holds. "New" = the raw rows loaded after the last complete `dbt build`:

    - on-run-start, `begin_build` notes the newest lake load in raw (_lake_load_id, increasing:
      the load stage loads the lake's loads in order) as `pending`;
    - on-run-end, `end_build` moves `pending` to `built_through`, and notes each fact's highest
      record id, when every model was built and nothing failed. A partial or failed build
      leaves both, so the next build reads, and tests, everything since the last complete one
      again;
    - a model asks `window_start(table)` for the oldest last_updated among the rows loaded since,
      and reads staging from there on (staging's DISTINCT ON passes a last_updated filter down
      to raw, where `index_raw_tables` has indexed the same expression).

    The state is one row in totesys_raw._dbt_build_window, beside the raw data it describes:
    a rebuild drops both. Without it (the first build, a new warehouse) models read everything. -#}

{% macro build_window_relation() -%}
    {{ return(api.Relation.create(
        database=target.database, schema='totesys_raw', identifier='_dbt_build_window'
    )) }}
{%- endmacro %}

{#- on-run-start: indexes for the window (lake load id, last_updated) and for version lookups
    (id, last_updated), on the expressions staging reads them with: an index on the bare bigint
    id cannot serve staging's `id::integer = ...`, which turned each lookup into a scan of every
    newer row (a wide window took minutes). A table that gets one is analyzed, so the planner
    knows its expressions. -#}
{% macro index_raw_tables() -%}
    {%- if execute and flags.WHICH in ('build', 'run') %}
        {%- set existing = run_query(
            "select indexname from pg_indexes where schemaname = 'totesys_raw'"
        ).columns[0].values() %}
        {%- for table in totesys_tables() + ['source_keys'] %}
            {%- set raw = load_relation(source('totesys', table)) %}
            {%- set indexes = {table ~ '_lake_load': '(_lake_load_id::numeric)'} %}
            {%- if table != 'source_keys' %}
                {%- do indexes.update({
                    table ~ '_last_updated': '(' ~ source_timestamp('last_updated') ~ ')',
                    table ~ '_staged_version': '(' ~ table ~ '_id::integer), ('
                        ~ source_timestamp('last_updated') ~ ')',
                }) %}
            {%- endif %}
            {%- set missing = indexes.keys() | reject('in', existing) | list %}
            {%- if raw is not none and missing %}
                {%- for name in missing %}
                    create index if not exists {{ name }} on {{ raw }} ({{ indexes[name] }});
                {%- endfor %}
                -- superseded by <table>_staged_version
                drop index if exists {{ raw.schema }}.{{ table }}_version;
                analyze {{ raw }};
            {%- endif %}
        {%- endfor %}
    {%- endif %}
{%- endmacro %}

{#- The facts (incremental models with a *_record_id column): {model name: (relation, column)}. -#}
{% macro record_id_columns() -%}
    {%- set found = {} %}
    {%- if not execute or 'nodes' not in graph %}
        {{ return(found) }}
    {%- endif %}
    {%- for node in graph.nodes.values()
        if node.resource_type == 'model' and node.config.materialized == 'incremental' %}
        {%- for column in node.columns if column.endswith('_record_id') %}
            {%- set relation = api.Relation.create(
                database=node.database, schema=node.schema, identifier=node.alias
            ) %}
            {%- do found.update({node.name: (relation, column)}) %}
        {%- endfor %}
    {%- endfor %}
    {{ return(found) }}
{%- endmacro %}

{% macro begin_build() -%}
    {%- if execute and flags.WHICH in ('build', 'run') %}
        {%- set raw_tables = [] %}
        {%- for table in totesys_tables() + ['source_keys'] %}
            {%- set raw = load_relation(source('totesys', table)) %}
            {%- if raw is not none %}{% do raw_tables.append(raw) %}{% endif %}
        {%- endfor %}
        {%- if raw_tables %}
            {%- set window = build_window_relation() %}
            create table if not exists {{ window }} (
                built_through numeric, pending numeric, record_ids_built jsonb
            );
            insert into {{ window }} (built_through)
            select null
            where not exists (select 1 from {{ window }});
            update {{ window }} set
                pending = greatest(
                    {%- for raw in raw_tables %}
                        (select max(_lake_load_id::numeric) from {{ raw }})
                        {{- ',' if not loop.last }}
                    {%- endfor %}
                );
        {%- endif %}
    {%- endif %}
{%- endmacro %}

{% macro end_build(results) -%}
    {%- if execute and flags.WHICH == 'build' %}
        {%- set models = graph.nodes.values() | selectattr('resource_type', 'equalto', 'model') %}
        {%- set built = results | selectattr('node.resource_type', 'equalto', 'model')
            | selectattr('status', 'equalto', 'success') | list %}
        {%- set failed = results | selectattr('status', 'in', ['error', 'fail']) | list %}
        {%- if not failed and built | length == models | list | length %}
            {#- begin_build may have created the table in this build: the relation cache does not
                know it yet, so the database decides -#}
            do $$
            begin
                if to_regclass('{{ build_window_relation().include(database=false) }}') is not null then
                    update {{ build_window_relation() }} set
                        built_through = pending,
                        record_ids_built = jsonb_build_object(
                            {%- for name, (relation, column) in record_id_columns().items() %}
                                '{{ name }}', (select max({{ column }}) from {{ relation }}),
                            {%- endfor %}
                            'at', now()
                        );
                end if;
            end $$;
        {%- endif %}
    {%- endif %}
{%- endmacro %}

{#- The window's state, or none outside a build that has one (and in dbt unit tests, which
    compile without the project's graph and mock the sources). It changes only at on-run-end, so
    it is read once per build and kept in `graph`, the one dict all nodes of a dbt invocation
    share: every test and windowed model asks for it (54 queries a build before). -#}
{% macro build_window() -%}
    {%- if not execute or flags.FULL_REFRESH or 'nodes' not in graph %}
        {{ return(none) }}
    {%- endif %}
    {%- if '_totes_build_window' not in graph %}
        {%- do graph.update({'_totes_build_window': read_build_window(), '_totes_window_starts': {}}) %}
    {%- endif %}
    {{ return(graph['_totes_build_window']) }}
{%- endmacro %}

{% macro read_build_window() -%}
    {%- set relation = load_relation(build_window_relation()) %}
    {%- if relation is none %}
        {{ return(none) }}
    {%- endif %}
    {%- set rows = run_query(
        "select built_through::text, record_ids_built::text from " ~ relation
    ).rows %}
    {%- if rows | length == 0 or rows[0][0] is none %}
        {{ return(none) }}
    {%- endif %}
    {{ return({'built_through': rows[0][0], 'record_ids_built': fromjson(rows[0][1] or '{}')}) }}
{%- endmacro %}

{#- The oldest last_updated of a table's raw rows loaded since the last complete build, as a SQL
    literal: 'infinity' when nothing was loaded since; none when everything must be read (no
    complete build yet, a full refresh). A literal, not a subquery, so the planner can use the
    index. -#}
{% macro window_start(table) -%}
    {%- set window = build_window() %}
    {%- if window is none %}
        {{ return(none) }}
    {%- endif %}
    {%- set starts = graph['_totes_window_starts'] %}  {#- raw does not change during a build #}
    {%- if table not in starts %}
        {%- set oldest = run_query(
            "select coalesce(min(" ~ source_timestamp('last_updated') ~ ")::text, 'infinity') from "
            ~ source('totesys', table) ~ " where _lake_load_id::numeric > "
            ~ dbt.string_literal(dbt.escape_single_quotes(window.built_through)) ~ "::numeric"
        ).columns[0].values()[0] %}
        {%- do starts.update({table: dbt.string_literal(oldest) ~ "::timestamp"}) %}
    {%- endif %}
    {{ return(starts[table]) }}
{%- endmacro %}

{#- Whether a key snapshot (raw source_keys) was loaded since the last complete build: true
    when that cannot be known (no window: a first build, a full refresh). deleted_rows changes
    only then. Asked by the model and its pre-hook: read once per invocation, kept in the graph
    like the window. -#}
{% macro key_snapshot_arrived() -%}
    {%- if not execute %}
        {{ return(true) }}
    {%- endif %}
    {%- if '_totes_key_snapshot_arrived' not in graph %}
        {%- do graph.update({'_totes_key_snapshot_arrived': read_key_snapshot_arrived()}) %}
    {%- endif %}
    {{ return(graph['_totes_key_snapshot_arrived']) }}
{%- endmacro %}

{% macro read_key_snapshot_arrived() -%}
    {%- set snapshots = load_relation(source('totesys', 'source_keys')) %}
    {%- set window = build_window() %}
    {%- if window is none or snapshots is none %}
        {{ return(true) }}
    {%- endif %}
    {%- set arrived = run_query(
        "select count(*) from " ~ snapshots
        ~ " where _lake_load_id::numeric > " ~ window.built_through
    ).columns[0].values()[0] %}
    {{ return(arrived > 0) }}
{%- endmacro %}

{#- A post-hook of the marts. A build without a window (the first one, a full refresh) leaves
    new tables with no statistics until autovacuum samples them, a minute or more later; until
    then the next builds planned their lookups blind (the first incremental runs after an
    initial load at scale 100: a fact's reference test 0.6 s instead of 0.1 s, dim_date 0.6 s
    instead of 0.2 s). Sampling a table takes a fraction of a second at any size. -#}
{% macro analyze_after_full_build() -%}
    {%- if build_window() is none and model.config.materialized != 'view' %}analyze {{ this }}{% endif %}
{%- endmacro %}
