with

staff as (
    {{ latest_versions(ref('stg_totesys__staff'), 'staff_id') }}
),

departments as (
    {{ latest_versions(ref('stg_totesys__department'), 'department_id') }}
)

-- Inner join: the source's foreign key guarantees every staff member a department.
select
    staff.staff_id,
    staff.first_name,
    staff.last_name,
    departments.department_name,
    departments.location,
    staff.email_address
from staff
inner join departments
    on staff.department_id = departments.department_id
