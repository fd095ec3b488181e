{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{% if is_incremental() and key_snapshot_arrived() %}delete from {{ this }}{% endif %}",
    )
}}

-- Rows deleted in totesys (hard deletes, which the last_updated cursor cannot see). A key
-- snapshot (raw source_keys, taken every TOTES_KEY_CHECK_EVERY runs) lists the ids each table
-- holds; an id that an earlier lake load held and the latest snapshot lacks was deleted. It was
-- detected by the first snapshot after the last one that still held it. Everything here derives
-- from raw, so a rebuild from the lake gives the same rows. Nothing is removed: facts keep the
-- row's versions and dims keep its last state; the fact_*_current views leave it out.
--
-- Incremental, so the table is never replaced: the current views read it, and a replaced table
-- takes the views on it with it (dbt drops the old one with cascade) until they are rebuilt at
-- the end of the build. Only a new key snapshot changes the rows: then the pre-hook empties the
-- table and the rows are recomputed, in one transaction (an id restored in totesys leaves it).
-- Otherwise nothing is written.

{%- set tables = totesys_tables() %}
{#- source() outside any branch, so dbt records the dependencies while parsing -#}
{%- set snapshots = source('totesys', 'source_keys') %}
{%- set raw_tables = {} %}
{%- for table in tables %}{% do raw_tables.update({table: source('totesys', table)}) %}{% endfor %}
{%- set recompute = not is_incremental() or key_snapshot_arrived() %}


with

key_ranges as (
    {%- if load_relation(snapshots) is not none %}
        select
            source_table,
            first_id,
            last_id,
            _lake_load_id
        from {{ snapshots }}
    {%- else %}
        -- no key snapshot yet: nothing can be known deleted
        select
            null::varchar as source_table,
            null::bigint as first_id,
            null::bigint as last_id,
            null::varchar as _lake_load_id
        where false
    {%- endif %}
),

latest_snapshot as (
    select distinct on (source_table)
        source_table,
        _lake_load_id
    from key_ranges
    order by source_table asc, _lake_load_id::numeric desc
),

kept_ranges as (
    select
        key_ranges.source_table,
        key_ranges.first_id,
        key_ranges.last_id
    from key_ranges
    inner join latest_snapshot
        on
            key_ranges.source_table = latest_snapshot.source_table
            and key_ranges._lake_load_id = latest_snapshot._lake_load_id
),

-- ids outside the latest snapshot's ranges: few, so the cast and the grouping stay cheap
missing as (
    {% for table in tables %}
        select
            '{{ table }}' as source_table,
            loaded.{{ table }}_id as source_id,
            loaded._lake_load_id
        from {{ raw_tables[table] }} as loaded
        where
            not exists (
                select 1
                from kept_ranges
                where
                    kept_ranges.source_table = '{{ table }}'
                    and loaded.{{ table }}_id between kept_ranges.first_id and kept_ranges.last_id
            )
        {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

deleted as (
    select
        missing.source_table,
        missing.source_id,
        min(missing._lake_load_id::numeric) as first_lake_load
    from missing
    inner join latest_snapshot
        on missing.source_table = latest_snapshot.source_table
    group by missing.source_table, missing.source_id, latest_snapshot._lake_load_id
    -- an id first read in the snapshot's own load may have come after the snapshot
    having min(missing._lake_load_id::numeric) < latest_snapshot._lake_load_id::numeric
),

last_held as (
    select
        deleted.source_table,
        deleted.source_id,
        max(key_ranges._lake_load_id::numeric) as snapshot_load
    from deleted
    inner join key_ranges
        on
            deleted.source_table = key_ranges.source_table
            and deleted.source_id between key_ranges.first_id and key_ranges.last_id
    group by deleted.source_table, deleted.source_id
),

detected as (
    select
        deleted.source_table,
        deleted.source_id,
        min(key_ranges._lake_load_id::numeric) as snapshot_load
    from deleted
    left join last_held
        on
            deleted.source_table = last_held.source_table
            and deleted.source_id = last_held.source_id
    inner join key_ranges
        on
            deleted.source_table = key_ranges.source_table
            and key_ranges._lake_load_id::numeric
            > greatest(deleted.first_lake_load, last_held.snapshot_load)
    group by deleted.source_table, deleted.source_id
)

select
    source_table::varchar as source_table,
    source_id::integer as source_id,
    -- a lake load id is the unix time the load started
    (to_timestamp(snapshot_load) at time zone 'UTC')::timestamp as detected_at
from detected
{%- if not recompute %}
    where false  -- no new key snapshot: the rows stand
{%- endif %}
