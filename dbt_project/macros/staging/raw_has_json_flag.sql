{#- Whether raw holds the loader's `body_is_json` (a raw table landed by an older loader does
    not). A catalog query: ask once per model. -#}
{% macro raw_has_json_flag() -%}
    {%- if not execute -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set columns = adapter.get_columns_in_relation(source('sqs', 'login_messages')) -%}
    {{ return('body_is_json' in columns | map(attribute='name') | map('lower') | list) }}
{%- endmacro %}
