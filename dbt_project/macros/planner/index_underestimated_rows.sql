{#- An index on `column` of `relation` for an incremental build: its new rows are found by
    load (not_yet_processed()), which the planner estimates at one row, so without an index it
    scans `relation` once for each of them. -#}
{% macro index_underestimated_rows(relation, column) -%}
    {%- if is_incremental() -%}
        create index on {{ relation }} ({{ column }})
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}
