-- One row per version of an event: a file sent again repeats its events, which count once; an
-- event sent again with other values is a new version, dated by the file that brought it. Until
-- a run has read a file the source table does not exist, and this view is empty.

{%- set raw = source('deliveries', 'delivery_event') %}
{%- set raw_exists = adapter.get_relation(raw.database, raw.schema, raw.identifier) is not none %}

with

source as (
    {%- if raw_exists %}
        select
            event_id,
            sales_order_id,
            event_type,
            event_at,
            units,
            carrier,
            source_file,
            file_modified_at,
            _lake_load_id
        from {{ raw }}
    {%- else %}
        select
            null::varchar as event_id,
            null::bigint as sales_order_id,
            null::varchar as event_type,
            null::timestamptz as event_at,
            null::bigint as units,
            null::varchar as carrier,
            null::varchar as source_file,
            null::timestamptz as file_modified_at,
            null::varchar as _lake_load_id
        where false
    {%- endif %}
)

select distinct on (event_id, sales_order_id, event_type, event_at, units, carrier)
    _lake_load_id,
    event_id::varchar as event_id,
    sales_order_id::integer as sales_order_id,
    event_type::varchar as event_type,
    units::integer as units,
    carrier::varchar as carrier,
    source_file::varchar as source_file,
    (event_at at time zone 'UTC')::timestamp as event_at,
    -- the version's time: when the first file carrying these values was written
    (file_modified_at at time zone 'UTC')::timestamp as last_updated
from source
order by
    event_id asc,
    sales_order_id asc,
    event_type asc,
    event_at asc,
    units asc,
    carrier asc,
    file_modified_at asc,
    _lake_load_id::numeric asc
