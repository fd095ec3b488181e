{#- The source's change marker: every distinct (id, last_updated) is one version of a row. -#}

{#- One row per version, however often it was extracted or loaded. -#}
{% macro dedupe_versions(relation, id_column) -%}
    select distinct on ({{ id_column }}, last_updated) *
    from {{ relation }}
    order by {{ id_column }} asc, last_updated asc, _lake_load_id asc
{%- endmacro %}

{#- The latest version of each row: the current state a dimension shows. -#}
{% macro latest_versions(relation, id_column) -%}
    select distinct on ({{ id_column }}) *
    from {{ relation }}
    order by {{ id_column }} asc, last_updated desc
{%- endmacro %}

{#- Raw timestamps arrive as timestamptz in UTC; the source's are naive UTC with ms precision. -#}
{% macro source_timestamp(column) -%}
    ({{ column }} at time zone 'UTC')::timestamp(3)
{%- endmacro %}

{#- Versions from `relation` that an append-only fact (`this`) does not hold yet. -#}
{% macro unseen_versions(relation, id_column) -%}
    select staged.*
    from {{ relation }} as staged
    {%- if is_incremental() %}
        where not exists (
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

{#- The latest version of each id in an append-only fact: its current state.
    Analysts can call it in their own queries: {{ current_versions(ref('fact_payment'), 'payment_id') }} -#}
{% macro current_versions(fact, id_column) -%}
    select distinct on ({{ id_column }}) *
    from {{ fact }}
    order by {{ id_column }} asc, last_updated_date desc, last_updated_time desc
{%- endmacro %}
