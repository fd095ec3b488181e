{#- The columns that identify a version, in one test: a row for each row where one of them is
    null (none = pass). One query instead of a not_null test per column, because each dbt node
    costs a build a fixed tenth of a second. -#}
{% test not_null_columns(model, column_names) %}
    select *
    from {{ model }}
    where
        {%- for column in column_names %}
            {{ adapter.quote(column) }} is null
            {%- if not loop.last %} or{% endif %}
        {%- endfor %}
{% endtest %}
