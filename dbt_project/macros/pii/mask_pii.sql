{#- A keyed HMAC-SHA256 (hex) of a PII value. The key never passes through dbt: it lives in
    the database, readable only by the function's owner (installed by `logins db init`), so
    compiled SQL and dbt's logs hold only this call. `kind` separates the domains, so an IP and
    a device id that happen to be the same string do not link. -#}
{% macro mask_pii(kind, value) -%}
    {{ var('pii_schema') }}.mask('{{ kind }}', {{ value }})
{%- endmacro %}
