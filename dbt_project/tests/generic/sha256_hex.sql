{#- A mask is 64 lowercase hex characters (a SHA-256 digest). Checked by length and a
    character class: Postgres runs '^[0-9a-f]{64}$' about 20 times slower. -#}
{% test sha256_hex(model, column_name) %}
    select {{ column_name }}
    from {{ model }}
    where length({{ column_name }}) != 64 or {{ column_name }} ~ '[^0-9a-f]'
{% endtest %}
