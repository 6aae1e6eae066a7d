{#- Custom schemas are used as named (staging, not public_staging), so the marts stay in the
    target schema (public.user_logins) and staging in `staging`, as users expect. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
