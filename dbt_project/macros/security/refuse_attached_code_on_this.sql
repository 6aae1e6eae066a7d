{#- The model's own table, for writing (the project's pre-hook). -#}
{% macro refuse_attached_code_on_this() -%}
    {{ return(refuse_attached_code([(this.schema, this.identifier, true)] if execute else [])) }}
{%- endmacro %}
