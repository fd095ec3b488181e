{#- Fails with each (id, last_updated) that appears more than once: a version must be one row. -#}
{% test one_row_per_version(model, id_column) %}
    select
        {{ id_column }},
        last_updated,
        count(*) as copies
    from {{ model }}
    group by {{ id_column }}, last_updated
    having count(*) > 1
{% endtest %}
