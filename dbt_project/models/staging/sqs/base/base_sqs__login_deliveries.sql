{#- The deliveries of committed dlt loads, one a message: SQS delivers at least once, and of a
    message's deliveries the last one landed is kept. Ephemeral: staging reads it as a CTE, so
    its incremental filter (on `loaded_at`) reaches raw's indexes, and nothing extra is
    written. No window function or DISTINCT here: either would stop that filter being pushed
    down. -#}

{#- whether raw holds the loader's `body_is_json` (a catalog query: asked once) -#}
{%- set has_json_flag = raw_has_json_flag() -%}

with

messages as not materialized (
    select * from {{ source('sqs', 'login_messages') }}
),

committed_loads as not materialized (
    select
        load_id,
        inserted_at as loaded_at
    from {{ source('sqs', '_dlt_loads') }}
    where status = 0
),

-- used twice below: not materialized, so the filters of each use reach raw's indexes
deliveries as not materialized (
    select
        messages.message_id,
        messages._dlt_id as delivery_id,
        messages._dlt_load_id as load_id,
        committed_loads.loaded_at,
        messages.body,
        {%- if has_json_flag %}
        messages.body_is_json,
        {%- endif %}
        {%- if raw_has_body_encoding() %}
        messages.body_encoding,
        {%- else %}
        null::text as body_encoding,
        {%- endif %}
        messages.sent_at,
        messages.receive_count,
        messages.received_at
    from messages
    inner join committed_loads on messages._dlt_load_id = committed_loads.load_id
),

latest_deliveries as (
    select deliveries.*
    from deliveries
    where not exists (
            select
            from deliveries as later
            where
                later.message_id = deliveries.message_id
                and (later.load_id, later.delivery_id) > (deliveries.load_id, deliveries.delivery_id)
        )
)

select * from latest_deliveries
