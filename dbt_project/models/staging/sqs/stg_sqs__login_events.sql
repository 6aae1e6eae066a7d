{#- One row per SQS message whose dlt load has committed: parsed, cast and validated.
    `reject_reason` is null for a valid login and names the first problem otherwise; the marts
    split on it, so every message lands in exactly one of user_logins or the rejects.

    A table, built incrementally: each body is parsed once, when its load is new, and the
    marts and tests read the parsed rows (as a view it was parsed again by each of them: at
    1M rows that was most of a build). A redelivery replaces the row of its message.
    Unlogged (no WAL): it is derived from raw alone, and if a crash empties it the next build
    fills it again from raw, while the marts skip what they hold.
    Written so the incremental filter reaches the raw table's indexes: no window function or
    DISTINCT (they would stop predicate push-down), and CTEs used twice are NOT MATERIALIZED.
    Written to run in parallel: every function it calls is parallel safe (JSON validity comes
    from raw's `body_is_json`, the IP check is a regex), and each value computed once a row
    is computed in a function call in FROM (see `parsed` below). A full build of 1M rows:
    10 s, was 21 s serial. A new table is analyzed at once: the marts' plans over 1M rows
    without statistics took twice as long. -#}
{{
    config(
        materialized='incremental',
        unique_key='message_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        pre_hook=[
            "{{ refuse_attached_code_on_sources() }}",
            "set local enable_memoize = off; set local work_mem = '256MB'",
        ],
        post_hook=[
            "{{ ensure_output_indexes() }}",
            "{{ 'select 1' if is_incremental() else 'analyze ' ~ this }}",
        ],
        unlogged=true,
    )
}}

{%- set required_strings = ['user_id', 'device_type', 'ip', 'device_id', 'app_version'] -%}
{#- whether raw holds the loader's `body_is_json` (a catalog query: asked once) -#}
{%- set has_json_flag = raw_has_json_flag() -%}
{#- whether raw holds `body_encoding` (set for a body kept base64) -#}
{%- set has_body_encoding = raw_has_body_encoding() -%}
{%- set max_lengths = {'user_id': 128, 'device_type': 32, 'locale': 32} -%}
{%- set known_fields = required_strings + ['locale'] -%}
{#- the column holding each field's text, where it is not the field's name -#}
{%- set field_columns = {'ip': 'ip_text'} -%}

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
        {%- if has_body_encoding %}
        messages.body_encoding,
        {%- endif %}
        messages.sent_at,
        messages.receive_count,
        messages.received_at
    from messages
    inner join committed_loads on messages._dlt_load_id = committed_loads.load_id
),

latest_deliveries as (
    -- SQS delivers at least once: of a message's deliveries keep the last one landed
    select deliveries.*
    from deliveries
    where
        {{ not_yet_processed('deliveries', known_messages=true) }}
        and not exists (
            select
            from deliveries as later
            where
                later.message_id = deliveries.message_id
                and (later.load_id, later.delivery_id) > (deliveries.load_id, deliveries.delivery_id)
        )
),

-- Each step below computes its columns once a row in a function call in FROM (`unnest` of
-- one-element arrays): as plain columns the planner would inline them and run each parse or
-- regex again wherever a later column uses it (the reject-reason CASE ran three times a row:
-- most of a build at 1M rows). Unlike a subquery with a LIMIT or OFFSET, or a correlated
-- subquery, a function call does not keep Postgres from running the query in parallel.
-- (Postgres would also cache results keyed on the whole body, which never repeats: the
-- pre-hook turns that cache off for this model.)
parsed as (
    select
        latest_deliveries.*,
        body_json.doc,
        body_fields.*
    from latest_deliveries
    cross join lateral unnest(array[{{ parse_body_jsonb('latest_deliveries', has_json_flag) }}]) as body_json (doc)
    -- each field looked up once a row, all in one row value
    cross join lateral unnest(array[row(
        {%- for field in known_fields %}
        body_json.doc ->> '{{ field }}',
        jsonb_typeof(body_json.doc -> '{{ field }}'),
        {%- endfor %}
        jsonb_typeof(body_json.doc)
    )]) as body_fields (
        {%- for field in known_fields %}
        {{ field_columns.get(field, field) }} text,
        {{ field }}_type text,
        {%- endfor %}
        doc_type text
    )
),

derived as (
    select
        parsed.*,
        derived_fields.*
    from parsed
    cross join lateral unnest(array[row(
        {{ app_version_code('parsed.app_version') }},
        {{ canonical_ip('parsed.ip_text') }}
    )]) as derived_fields (app_version_code integer, ip text)
),

validated as (
    select
        derived.*,
        checks.reject_reason
    from derived
    -- once a row: as a plain column the planner copies this CASE into each expression below
    -- that uses reject_reason
    cross join lateral unnest(array[
        case
            when derived.body = '' then 'erased: body erased by `logins pii forget` before it was processed'
            {%- if has_body_encoding %}
            when
                derived.body_encoding is not null
                then 'unstorable_body: body held characters Postgres cannot store (kept base64)'
            {%- endif %}
            when derived.doc is null then 'not_json: body is not valid JSON'
            when derived.doc_type != 'object' then 'not_object: body is a JSON ' || derived.doc_type
            -- JSON allows a key twice and Postgres keeps the last: which one was meant is
            -- unknown. Every key in the text is followed by a colon, so a body with no more
            -- colons than the known keys it holds cannot repeat one, and only other bodies
            -- are parsed again to count their keys (the count costs more than the parse).
            when
                octet_length(derived.body) - octet_length(replace(derived.body, ':', ''))
                > (
                    {%- for field in known_fields %}
                    {{ '+ ' if not loop.first }}(derived.{{ field }}_type is not null)::int
                    {%- endfor %}
                )
                and {{ parsing_function('json_key_count') }}(derived.body::json)
                != {{ parsing_function('jsonb_key_count') }}(derived.doc)
                then 'duplicate_key: a key appears more than once'
            {%- for field in required_strings %}
            when derived.{{ field }}_type is null then 'missing_field: {{ field }}'
            {%- endfor %}
            {%- for field in required_strings %}
            when derived.{{ field }}_type != 'string'
                then 'wrong_type: {{ field }} is ' || derived.{{ field }}_type || ', not string'
            {%- endfor %}
            when derived.locale_type not in ('string', 'null')
                then 'wrong_type: locale is ' || derived.locale_type || ', not string or null'
            {%- for field in known_fields %}
            when derived.{{ field_columns.get(field, field) }} = '' then 'empty_field: {{ field }}'
            {%- endfor %}
            -- JSON text cannot hold a control character unescaped: without a backslash in
            -- the body there is none, and the regexes are skipped
            {%- for field in ['user_id', 'device_type', 'device_id', 'locale'] %}
            when
                strpos(derived.body, '\') > 0 and derived.{{ field }} ~ '[[:cntrl:]]'
                then 'invalid_characters: {{ field }} has control characters'
            {%- endfor %}
            {%- for field, max_length in max_lengths.items() %}
            when
                length(derived.{{ field }}) > {{ max_length }}
                then 'too_long: {{ field }} is longer than {{ max_length }} characters'
            {%- endfor %}
            when derived.ip is null then 'invalid_ip: ip is not an IPv4 or IPv6 address'
            when derived.app_version_code is null
                then
                    'invalid_app_version: app_version is not MAJOR.MINOR[.PATCH] '
                    || '(major 0-9999, minor and patch 0-99)'
            when derived.sent_at is null then 'missing_sent_timestamp: SQS gave no SentTimestamp'
        end
    ]) as checks (reject_reason)
),

final as (
    select
        message_id,
        load_id,
        loaded_at,
        sent_at,
        received_at,
        receive_count,
        -- kept for rejects only (to fix and replay them): a valid login's body is in its
        -- fields, and one plaintext copy fewer is less to write and to erase
        case when reject_reason is not null then body end as body,
        user_id,
        device_type,
        ip,
        device_id,
        locale,
        app_version,
        case when reject_reason is null then app_version_code end as app_version_code,
        (sent_at at time zone 'UTC')::date as create_date,
        split_part(reject_reason, ':', 1) as reject_code,
        reject_reason
    from validated
)

select * from final
