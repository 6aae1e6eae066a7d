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
