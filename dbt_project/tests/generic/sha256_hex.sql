{#- A mask is 64 lowercase hex characters (a SHA-256 digest). -#}
{% test sha256_hex(model, column_name) %}
    select {{ column_name }}
    from {{ model }}
    where {{ column_name }} !~ '^[0-9a-f]{64}$'
{% endtest %}
