{#- A strict dotted quad: no leading zeros, which some parsers read as octal. -#}
{% macro ipv4_pattern() -%}
    {%- set octet = '(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])' -%}
    (?:{{ octet }}\.){3}{{ octet }}
{%- endmacro %}
