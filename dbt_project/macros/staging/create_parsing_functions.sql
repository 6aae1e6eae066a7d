{#- Postgres 15 has no "is json" and no pg_input_is_valid (both arrive in 16), so a bad body
    would abort the whole build. try_parse_jsonb returns null instead, and staging turns that
    null into a reject reason. The exception block costs a few us a row, and is a
    subtransaction, which Postgres refuses inside a parallel query ("cannot start
    subtransactions during a parallel operation"): so PARALLEL UNSAFE, and used only for raw
    tables without the loader's `body_is_json` (see parse_body_jsonb()). -#}
{% macro create_parsing_functions() %}
    {%- set schema = generate_schema_name('staging', none) -%}
    create schema if not exists {{ schema }};
    {%- for name, type in [('try_parse_jsonb', 'jsonb')] %}

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

    -- how many keys a JSON object's text holds, repeats included (jsonb keeps one of each):
    -- functions, so the duplicate-key check is no correlated subquery (those must run in the
    -- leader of a parallel query)
    {%- for name, type in [('json_key_count', 'json'), ('jsonb_key_count', 'jsonb')] %}

    create or replace function {{ schema }}.{{ name }}(value {{ type }})
    returns bigint
    language sql immutable strict parallel safe
    as $fn$
        select count(*) from {{ type }}_object_keys(value)
    $fn$;
    {%- endfor %}
{% endmacro %}
