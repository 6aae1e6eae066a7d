{#- The incremental filter shared by the marts (true on a full build): rows of loads
    committed since the newest load this model holds (less the late-load lookback), whose
    message it does not hold yet. The first half keeps an incremental build's cost in
    proportion to new data; the second makes the result exact whatever order loads commit in. -#}
{% macro not_yet_processed(alias) -%}
    {%- if is_incremental() -%}
        {{ alias }}.loaded_at > (
            select coalesce(max(processed.loaded_at), '-infinity'::timestamptz)
            from {{ this }} as processed
        ) - interval '{{ var("late_load_lookback") }}'
        and not exists (
            select
            from {{ this }} as processed
            where processed.message_id = {{ alias }}.message_id
        )
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}
