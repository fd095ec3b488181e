with

designs as (
    {{ latest_versions(ref('stg_totesys__design'), 'design_id') }}
)

select
    design_id,
    design_name,
    file_location,
    file_name
from designs
