{#- Computes expressions once a row, as the columns of a one-row function call in FROM
    (`unnest` of a one-element array). As plain columns the planner inlines them into every
    later expression that uses them, and runs each parse or regex again there; a subquery
    with LIMIT or OFFSET, or a correlated subquery, would stop the query running in parallel,
    and a function call does not. `columns` are (name, type, expression) triples; a single
    column needs no row type, and its expression can be the body of a call block. -#}
{% macro evaluate_once_per_row(alias, columns) -%}
    {%- if columns | length == 1 -%}
        {%- set name, type = columns[0][:2] -%}
        {%- set expression = columns[0][2] if columns[0] | length > 2 else caller() -%}
        cross join lateral unnest(array[{{ expression }}]) as {{ alias }} ({{ name }})
    {%- else -%}
        cross join lateral unnest(array[row(
            {%- for name, type, expression in columns %}
            {{ expression }}{{ ',' if not loop.last }}
            {%- endfor %}
        )]) as {{ alias }} (
            {%- for name, type, expression in columns %}
            {{ name }} {{ type }}{{ ',' if not loop.last }}
            {%- endfor %}
        )
    {%- endif -%}
{%- endmacro %}
