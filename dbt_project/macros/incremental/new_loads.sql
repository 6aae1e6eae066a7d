{#- Commit times (ISO 8601 in UTC to the microsecond, whatever the session's DateStyle) of
    the committed loads `this` holds nothing of yet, within the late-load lookback before the
    newest load it holds. Looked up before the query and written into it as constants: as a
    subquery the planner cannot tell one new load from many, and plans to scan and hash whole
    tables where the loaded_at index finds the new rows. -#}
{% macro new_loads() -%}
    {%- if not execute -%}
        {{ return([]) }}
    {%- endif -%}
    {%- set query -%}
        select to_char(loads.inserted_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
        from {{ source('sqs', '_dlt_loads') }} as loads
        where
            loads.status = 0
            and loads.inserted_at > (
                select coalesce(max(processed.loaded_at), '-infinity'::timestamptz)
                from {{ this }} as processed
            ) - interval '{{ var("late_load_lookback") }}'
            and not exists (
                select
                from {{ this }} as processed
                where processed.loaded_at = loads.inserted_at
            )
        order by loads.inserted_at
    {%- endset -%}
    {{ return(run_query(query).columns[0].values()) }}
{%- endmacro %}
