{#- The sqs sources, for reading (staging's pre-hook). -#}
{% macro refuse_attached_code_on_sources() -%}
    {%- set checks = [] -%}
    {%- if execute -%}
        {%- for node in graph.sources.values() if node.source_name == 'sqs' -%}
            {%- do checks.append((node.schema, node.identifier, false)) -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(refuse_attached_code(checks)) }}
{%- endmacro %}
