{#- The source's change marker: every distinct (id, last_updated) is one version of a row. -#}

{#- One row per version, however often it was extracted or loaded. -#}
{% macro dedupe_versions(relation, id_column) -%}
    select distinct on ({{ id_column }}, last_updated) *
    from {{ relation }}
    order by {{ id_column }} asc, last_updated asc, _lake_load_id asc
{%- endmacro %}

{#- The latest valid version of each row of a staging model: the state a dimension shows.
    Versions held in quarantine (bad values, or a reference the warehouse cannot match yet) are
    skipped. Every totesys id column is <table>_id. -#}
{% macro latest_versions(relation, id_column) -%}
    select distinct on (staged.{{ id_column }}) staged.*
    from {{ relation }} as staged
    where
        staged.quarantine_reason is null
        and {{ references_hold('staged', id_column[:-3]) }}
    order by staged.{{ id_column }} asc, staged.last_updated desc
{%- endmacro %}

{#- For an incremental dimension: the latest valid version of each row that changed since the
    last complete build (see candidate_versions), unless staging holds a newer valid version of
    it (one released from quarantine late must not undo a newer state). -#}
{% macro changed_latest_versions(relation, id_column) -%}
    select distinct on (staged.{{ id_column }}) staged.*
    from ({{ candidate_versions(relation, id_column) }}) as staged
    left join lateral (
        {{ newer_valid_version(relation, id_column, 'staged.' ~ id_column, 'staged.last_updated') }}
    ) as newer on true
    where
        staged.quarantine_reason is null
        and {{ references_hold('staged', id_column[:-3], few_rows=true) }}
        and newer.{{ id_column }} is null
    order by staged.{{ id_column }} asc, staged.last_updated desc
{%- endmacro %}

{#- For a lateral join: a valid version in staging of the row `row_id` newer than `last_updated`,
    if any. The limit keeps it a lookup per row (the planner would otherwise join the whole
    staging view). -#}
{% macro newer_valid_version(relation, id_column, row_id, last_updated) -%}
    select newer.{{ id_column }}
    from {{ relation }} as newer
    where
        newer.{{ id_column }} = {{ row_id }}
        and newer.last_updated > {{ last_updated }}
        and newer.quarantine_reason is null
        and {{ references_hold('newer', id_column[:-3], few_rows=true) }}
    limit 1
{%- endmacro %}

{#- Raw timestamps arrive as timestamptz in UTC; the source's are naive UTC with ms precision. -#}
{% macro source_timestamp(column) -%}
    ({{ column }} at time zone 'UTC')::timestamp(3)
{%- endmacro %}

{#- Valid versions from a staging model that an append-only fact (`this`) does not hold yet.
    A version released from quarantine is unseen until then, so it arrives on that build. -#}
{% macro unseen_versions(relation, id_column) -%}
    select staged.*
    from ({{ candidate_versions(relation, id_column) }}) as staged
    where
        staged.quarantine_reason is null
        and {{ references_hold('staged', id_column[:-3], few_rows=is_incremental()) }}
    {%- if is_incremental() %}
        and not exists (
            select 1
            from {{ this }} as seen
            where
                seen.{{ id_column }} = staged.{{ id_column }}
                and seen.last_updated_date = staged.last_updated::date
                and seen.last_updated_time = staged.last_updated::time
        )
    {%- endif %}
{%- endmacro %}

{#- The staging versions an incremental model must look at: those loaded since the last complete
    build (see build_window.sql) and those held in quarantine after it, which may pass now. All
    of them when there is no window (the first build, a full refresh). -#}
{% macro candidate_versions(relation, id_column, windowed=false) -%}
    {%- set since = window_start(id_column[:-3]) if windowed or is_incremental() else none %}
    {%- set held = held_versions_relation() %}
    {%- if since is none %}
        select * from {{ relation }}
    {%- else %}
        select * from {{ relation }} where last_updated >= {{ since }}
        {%- if held is not none %}
            union
            select released.*
            from {{ held }} as held
            cross join lateral (
                -- limit: keeps this a lookup per held version (the planner would otherwise join
                -- the whole staging view)
                select *
                from {{ relation }} as staged
                where
                    staged.{{ id_column }} = held.source_id
                    and staged.last_updated = held.last_updated
                limit 1
            ) as released
            where held.source_table = '{{ id_column[:-3] }}' and held.status = 'held'
        {%- endif %}
    {%- endif %}
{%- endmacro %}

{#- The quarantine as the last build left it (not a ref: the quarantine depends on the marts). -#}
{% macro held_versions_relation() -%}
    {%- if not execute or 'nodes' not in graph %}
        {{ return(none) }}
    {%- endif %}
    {%- set node = graph.nodes.values() | selectattr('name', 'equalto', 'quarantined_rows') | first %}
    {{ return(load_relation(api.Relation.create(
        database=node.database, schema=node.schema, identifier=node.alias
    ))) }}
{%- endmacro %}

{#- The spec's date/time split of a source timestamp: <prefix>_date, <prefix>_time. -#}
{% macro split_timestamp(column, prefix) -%}
    {{ column }}::date as {{ prefix }}_date,
    {{ column }}::time as {{ prefix }}_time
{%- endmacro %}

{#- The latest version of each id in an append-only fact that is still in totesys: its current
    state. Ids deleted in totesys (model deleted_rows) are left out; their history stays in the
    fact. A fact's id column is <source table>_id. Analysts can call it in their own queries:
    {{ current_versions(ref('fact_payment'), 'payment_id') }} -#}
{% macro current_versions(fact, id_column) -%}
    select distinct on ({{ id_column }}) *
    from {{ fact }}
    where {{ id_column }} not in (
        select deleted.source_id
        from {{ ref('deleted_rows') }} as deleted
        where deleted.source_table = '{{ id_column[:-3] }}'
    )
    order by {{ id_column }} asc, last_updated_date desc, last_updated_time desc
{%- endmacro %}
