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

{#- Raw timestamps arrive as timestamptz in UTC; the source's are naive UTC with ms precision. -#}
{% macro source_timestamp(column) -%}
    ({{ column }} at time zone 'UTC')::timestamp(3)
{%- endmacro %}

{#- Valid versions from a staging model that an append-only fact (`this`) does not hold yet.
    A version released from quarantine is unseen until then, so it arrives on that build. -#}
{% macro unseen_versions(relation, id_column) -%}
    select staged.*
    from {{ relation }} as staged
    where
        staged.quarantine_reason is null
        and {{ references_hold('staged', id_column[:-3]) }}
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
