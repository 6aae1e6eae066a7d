{#- The kinds of PII user_logins masks: each a column of staging, and a domain of the masks. -#}
{% macro pii_kinds() -%}
    {{ return(['ip', 'device_id']) }}
{%- endmacro %}
