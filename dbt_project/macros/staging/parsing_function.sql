{#- The qualified name of one of create_parsing_functions()' functions. -#}
{% macro parsing_function(name) -%}
    {{ generate_schema_name('staging', none) }}.{{ name }}
{%- endmacro %}
