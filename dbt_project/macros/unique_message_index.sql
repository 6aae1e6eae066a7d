{#- Post-hook for the incremental outputs: the indexes their incremental filter relies on, and
    a unique message id. Made here rather than with `indexes=` (which dbt applies only when it
    creates the table), so they also appear on a table that existed before, such as the
    exercise's pre-created public.user_logins. Looked up first: even a `create index if not
    exists` waits for the table's lock, and after a large insert autovacuum holds it for
    seconds. -#}
{% macro ensure_output_indexes() -%}
    {%- set indexes = [
        (this.identifier ~ '__message_id_key', 'create unique index', 'message_id'),
        (this.identifier ~ '__loaded_at_idx', 'create index', 'loaded_at'),
    ] -%}
    {%- set statements = [] -%}
    {%- for name, command, column in indexes -%}
        {%- set found = run_query(
            "select to_regclass('" ~ adapter.quote(this.schema) ~ "." ~ adapter.quote(name) ~ "') is not null"
        ) if execute else none -%}
        {%- if not execute or not found.columns[0].values()[0] -%}
            {%- do statements.append(
                command ~ ' if not exists ' ~ adapter.quote(name) ~ ' on ' ~ this ~ ' (' ~ column ~ ')'
            ) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ statements | join(';\n') if statements else 'select 1' }}
{%- endmacro %}
