{#- A reject reason, `code: detail`, as a SQL literal. `code` must be one of the reject codes
    in dbt_project.yml (var reject_codes), the one list the docs and the rejects' tests read. -#}
{% macro reject_reason(code, detail) -%}
    {%- if code not in var('reject_codes') -%}
        {{ exceptions.raise_compiler_error(
            'reject code ' ~ code ~ ' is not in var reject_codes (dbt_project.yml)'
        ) }}
    {%- endif -%}
    '{{ code }}: {{ detail }}'
{%- endmacro %}
