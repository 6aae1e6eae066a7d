{#- Postgres 15 has no "is json" and no pg_input_is_valid (both arrive in 16), so a bad body
    or address would abort the whole build. These casts return null instead, and staging turns
    that null into a reject reason. The exception block costs a few us a row, and is a
    subtransaction, which Postgres refuses inside a parallel query ("cannot start
    subtransactions during a parallel operation", hit at about 1M rows): so PARALLEL UNSAFE. -#}
{% macro create_parsing_functions() %}
    {%- set schema = generate_schema_name('staging', none) -%}
    create schema if not exists {{ schema }};
    {%- for name, type in [('try_parse_jsonb', 'jsonb'), ('try_parse_inet', 'inet')] %}

    create or replace function {{ schema }}.{{ name }}(value text)
    returns {{ type }}
    language plpgsql immutable strict parallel unsafe
    as $fn$
    begin
        return value::{{ type }};
    exception when others then
        return null;
    end
    $fn$;
    {%- endfor %}
{% endmacro %}

{% macro parsing_function(name) -%}
    {{ generate_schema_name('staging', none) }}.{{ name }}
{%- endmacro %}
