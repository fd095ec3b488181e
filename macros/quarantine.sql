{#- Bad values do not stop the build: a version that breaks a rule is held in quarantine, with its
    reasons, and no dim or fact takes it. The rules are checked on every build, so a held version
    goes on as soon as it passes (its parent arrived).

    Two kinds of rule:
    - values, checked in staging (quarantine_reason): NOT NULL, text dates, no negatives;
    - references, checked where a dim or fact takes a version (references_hold): each id must
      match a row the warehouse holds. They point at marts tables, not at other staging views:
      dbt-postgres replaces a view by dropping it with cascade, and views built on views then
      deadlock under parallel threads. -#}

{#- The value rules one staging model breaks, as one text ("a; b"), or null. `row` is the alias
    of the raw rows being checked. -#}
{% macro quarantine_reason(row, not_null=[], text_dates=[], non_negative=[]) -%}
    nullif(concat_ws(
        '; '
        {%- for column in not_null %},
        case when {{ row }}.{{ column }} is null then '{{ column }} is null' end
        {%- endfor %}
        {%- for column in text_dates %},
        case
            when not {{ is_text_date(row ~ '.' ~ column) }}
                then '{{ column }} ' || quote_literal({{ row }}.{{ column }}) || ' is not a date'
        end
        {%- endfor %}
        {%- for column in non_negative %},
        case when {{ row }}.{{ column }} < 0 then '{{ column }} is negative' end
        {%- endfor %}
    ), '')
{%- endmacro %}

{#- The totesys tables, in the order their parents come first. -#}
{% macro totesys_tables() -%}
    {{ return([
        'address', 'counterparty', 'currency', 'department', 'design', 'staff', 'payment_type',
        'sales_order', 'purchase_order', 'transaction', 'payment',
    ]) }}
{%- endmacro %}

{#- Each source table's references: column -> [the model holding the parents, its id column, the
    parent's source table]. Model names, not refs: a model depends only on its own parents. -#}
{% macro totesys_references(table) -%}
    {%- set references = {
        'counterparty': {'legal_address_id': ['dim_location', 'location_id', 'address']},
        'staff': {'department_id': ['stg_totesys__department', 'department_id', 'department']},
        'sales_order': {
            'design_id': ['dim_design', 'design_id', 'design'],
            'staff_id': ['dim_staff', 'staff_id', 'staff'],
            'counterparty_id': ['dim_counterparty', 'counterparty_id', 'counterparty'],
            'currency_id': ['dim_currency', 'currency_id', 'currency'],
            'agreed_delivery_location_id': ['dim_location', 'location_id', 'address'],
        },
        'purchase_order': {
            'staff_id': ['dim_staff', 'staff_id', 'staff'],
            'counterparty_id': ['dim_counterparty', 'counterparty_id', 'counterparty'],
            'currency_id': ['dim_currency', 'currency_id', 'currency'],
            'agreed_delivery_location_id': ['dim_location', 'location_id', 'address'],
        },
        'transaction': {
            'sales_order_id': ['fact_sales_order', 'sales_order_id', 'sales_order'],
            'purchase_order_id': ['fact_purchase_orders', 'purchase_order_id', 'purchase_order'],
        },
        'payment': {
            'transaction_id': ['dim_transaction', 'transaction_id', 'transaction'],
            'counterparty_id': ['dim_counterparty', 'counterparty_id', 'counterparty'],
            'currency_id': ['dim_currency', 'currency_id', 'currency'],
            'payment_type_id': ['dim_payment_type', 'payment_type_id', 'payment_type'],
        },
    } -%}
    {{ return(references.get(table, {})) }}
{%- endmacro %}

{#- The parents a reference may match: the staging model's valid versions, or a marts table. -#}
{% macro _parent_ids(model, id_column) -%}
    select parent.{{ id_column }}
    from {{ ref(model) }} as parent
    {%- if model.startswith('stg_') %}
        where parent.quarantine_reason is null
    {%- endif %}
{%- endmacro %}

{#- True when a version's reference `row.column` matches a parent. Over many rows `in`, which
    Postgres answers with one hash of the parent ids per query; over `few_rows` (an incremental
    build) `exists`, an index lookup per row instead of hashing every parent id. -#}
{% macro _has_parent(row, column, parent, few_rows) -%}
    {%- if few_rows -%}
        exists ({{ _parent_ids(parent[0], parent[1]) }}
        {{- ' and' if parent[0].startswith('stg_') else ' where' }} parent.{{ parent[1] }} = {{ row }}.{{ column }})
    {%- else -%}
        {{ row }}.{{ column }} in ({{ _parent_ids(parent[0], parent[1]) }})
    {%- endif -%}
{%- endmacro %}

{#- True when every reference of a `table` version in `row` matches a parent (a null reference
    is fine). -#}
{% macro references_hold(row, table, few_rows=false) -%}
    {%- for column, parent in totesys_references(table).items() %}
        ({{ row }}.{{ column }} is null or {{ _has_parent(row, column, parent, few_rows) }})
        {%- if not loop.last %} and {% endif %}
    {%- else %}
        true
    {%- endfor %}
{%- endmacro %}

{#- The references of a `table` version in `row` that match no parent, as one text, or null. -#}
{% macro missing_references(row, table, few_rows=false) -%}
    {%- set references = totesys_references(table) %}
    {%- if not references %}
        null::text
    {%- else %}
        nullif(concat_ws(
            '; '
            {%- for column, parent in references.items() %},
            case
                when {{ row }}.{{ column }} is not null
                    and not {{ _has_parent(row, column, parent, few_rows) }}
                    then '{{ column }} ' || {{ row }}.{{ column }} || ' has no valid {{ parent[2] }} row yet'
            end
            {%- endfor %}
        ), '')
    {%- endif %}
{%- endmacro %}

{#- A source text date the warehouse can use: YYYY-MM-DD and a real day (not 2024-02-30).
    A null is not a date either. The form is checked with like and translate (ten characters,
    dashes at 5 and 8, the rest ASCII digits): the regular expression it replaces cost three
    times as much, in every staging read. The day is then checked as PostgreSQL reads one
    (proleptic Gregorian, no year 0), on its digits as text in C order, so it runs on every
    supported major: pg_input_is_valid needs 16, and this costs 0.2 µs a row more than it. -#}
{% macro is_text_date(column) -%}
    {%- set year = 'substr(' ~ column ~ ', 1, 4)' -%}
    {%- set month = 'substr(' ~ column ~ ', 6, 2)' -%}
    {%- set day = 'substr(' ~ column ~ ', 9, 2)' -%}
    case
        when not coalesce(
            {{ column }} like '____-__-__' and translate({{ column }}, '0123456789', '') = '--',
            false
        ) then false
        when
            {{ year }} = '0000'
            or {{ month }} collate "C" not between '01' and '12'
            or {{ day }} = '00'
            then false
        {#- every month has 28 days #}
        when {{ day }} collate "C" <= '28' then true
        when {{ month }} = '02'
            then {{ day }} = '29' and {{ is_leap_year(year ~ '::int') }}
        else
            {{ day }} in ('29', '30')
            or {{ day }} = '31' and {{ month }} in ('01', '03', '05', '07', '08', '10', '12')
    end
{%- endmacro %}

{#- True when the year (an integer expression) has a 29 February. -#}
{% macro is_leap_year(year) -%}
    ({{ year }} % 4 = 0 and ({{ year }} % 100 <> 0 or {{ year }} % 400 = 0))
{%- endmacro %}

{#- The text date as a date, or null when it is not one (that version is in quarantine). For a
    column in the staging model's text_dates, where its quarantine_reason is in scope: a version
    with no reason passed is_text_date already, so only held versions are checked twice. -#}
{% macro text_date(column) -%}
    case
        when quarantine_reason is null or {{ is_text_date(column) }} then {{ column }}::date
    end
{%- endmacro %}
