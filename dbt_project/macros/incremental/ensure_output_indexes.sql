{#- Post-hook for the incremental outputs: the indexes their incremental filter relies on, and
    a unique message id. Made here rather than with `indexes=` (which dbt applies only when it
    creates the table), so they also appear on a table that existed before, such as the
    exercise's pre-created public.user_logins. Looked up first: even a `create index if not
    exists` waits for the table's lock, and after a large insert autovacuum holds it for
    seconds. On a full refresh the old table's indexes still hold the names until it is
    dropped: they are renamed out of the way, so the new table gets its own. -#}
{% macro ensure_output_indexes() -%}
    {%- set indexes = [
        (this.identifier ~ '__message_id_key', 'create unique index', 'message_id'),
        (this.identifier ~ '__loaded_at_idx', 'create index', 'loaded_at'),
    ] -%}
    {%- set statements = [] -%}
    {%- for name, command, column in indexes -%}
        {%- set index = adapter.quote(this.schema) ~ "." ~ adapter.quote(name) -%}
        {#- null: no such index; true: on this table; false: on another one, the backup a full
            refresh keeps until it commits, whose indexes keep their names (so `if not exists`
            would skip, and the rebuilt table would have none) -#}
        {%- set found = run_query(
            "select (select i.indrelid = to_regclass('" ~ adapter.quote(this.schema) ~ "."
            ~ adapter.quote(this.identifier) ~ "') from pg_index as i"
            ~ " where i.indexrelid = to_regclass('" ~ index ~ "'))"
        ).columns[0].values()[0] if execute else none -%}
        {%- if found == false -%}
            {%- do statements.append(
                'alter index ' ~ index ~ ' rename to ' ~ adapter.quote(name ~ '__replaced_' ~ invocation_id[:8])
            ) -%}
        {%- endif -%}
        {%- if not execute or not found -%}
            {%- do statements.append(
                command ~ ' if not exists ' ~ adapter.quote(name) ~ ' on ' ~ this ~ ' (' ~ column ~ ')'
            ) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ statements | join(';\n') if statements else 'select 1' }}
{%- endmacro %}
