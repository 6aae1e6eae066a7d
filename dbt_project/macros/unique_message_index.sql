{#- Post-hook for the incremental outputs: the indexes their incremental filter relies on, and
    a unique message id. Made here rather than with `indexes=` (which dbt applies only when it
    creates the table), so they also appear on a table that existed before, such as the
    exercise's pre-created public.user_logins. -#}
{% macro ensure_output_indexes() -%}
    create unique index if not exists {{ this.identifier }}__message_id_key
    on {{ this }} (message_id);
    create index if not exists {{ this.identifier }}__loaded_at_idx
    on {{ this }} (loaded_at)
{%- endmacro %}
