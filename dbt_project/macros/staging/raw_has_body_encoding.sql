{#- Whether raw holds the loader's `body_encoding` (a raw table landed by an older loader does
    not, and then holds no encoded body). A catalog query: ask once per model. -#}
{% macro raw_has_body_encoding() -%}
    {%- if not execute -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set columns = adapter.get_columns_in_relation(source('sqs', 'login_messages')) -%}
    {{ return('body_encoding' in columns | map(attribute='name') | map('lower') | list) }}
{%- endmacro %}
