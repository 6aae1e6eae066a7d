{#- Postgres 15 has no "is json" and no pg_input_is_valid (both arrive in 16), so a bad body
    would abort the whole build. try_parse_jsonb returns null instead, and staging turns that
    null into a reject reason. The exception block costs a few us a row, and is a
    subtransaction, which Postgres refuses inside a parallel query ("cannot start
    subtransactions during a parallel operation"): so PARALLEL UNSAFE, and used only for raw
    tables without the loader's `body_is_json` (parse_body_jsonb below). -#}
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

{% macro parsing_function(name) -%}
    {{ generate_schema_name('staging', none) }}.{{ name }}
{%- endmacro %}

{#- The body as jsonb, or null when it is not JSON. The loader stores `body_is_json` beside each
    body (computed by Postgres as the row lands: loader/warehouse.py), so the body is cast only
    when it is JSON, and staging needs no exception block and runs in parallel. A raw table
    without that column (landed by an older loader) is parsed with try_parse_jsonb instead:
    the same result, serially. `has_json_flag` is raw_has_json_flag(), looked up once by the
    caller. -#}
{% macro parse_body_jsonb(alias, has_json_flag) -%}
    {%- if has_json_flag -%}
        case when {{ alias }}.body_is_json then {{ alias }}.body::jsonb end
    {%- else -%}
        {{ parsing_function('try_parse_jsonb') }}({{ alias }}.body)
    {%- endif -%}
{%- endmacro %}

{% macro raw_has_json_flag() -%}
    {%- if not execute -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set columns = adapter.get_columns_in_relation(source('sqs', 'login_messages')) -%}
    {{ return('body_is_json' in columns | map(attribute='name') | map('lower') | list) }}
{%- endmacro %}
