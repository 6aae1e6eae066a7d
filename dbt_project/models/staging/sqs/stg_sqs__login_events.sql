{#- One row per SQS message whose dlt load has committed: parsed, cast and validated.
    `reject_reason` is null for a valid login and names the first problem otherwise; the marts
    split on it, so every message lands in exactly one of user_logins or the rejects.

    A table, built incrementally: each body is parsed once, when its load is new, and the
    marts and tests read the parsed rows (as a view it was parsed again by each of them: at
    1M rows that was most of a build). A redelivery replaces the row of its message.
    Unlogged (no WAL): it is derived from raw alone, and if a crash empties it the next build
    fills it again from raw, while the marts skip what they hold.
    Written so the incremental filter reaches the raw table's indexes: no window function or
    DISTINCT (they would stop predicate push-down), CTEs used twice are NOT MATERIALIZED, and
    the body is parsed once per row in a lateral call. A new table is analyzed at once: the
    marts' plans over 1M rows without statistics took twice as long. -#}
{{
    config(
        materialized='incremental',
        unique_key='message_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        pre_hook="set local enable_memoize = off; set local work_mem = '256MB'",
        post_hook=[
            "{{ ensure_output_indexes() }}",
            "{{ 'select 1' if is_incremental() else 'analyze ' ~ this }}",
        ],
        unlogged=true,
    )
}}

{%- set required_strings = ['user_id', 'device_type', 'ip', 'device_id', 'app_version'] -%}
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

parsed as (
    select
        latest_deliveries.*,
        body_json.doc,
        body_fields.*
    from latest_deliveries
    cross join lateral {{ parsing_function('try_parse_jsonb') }}(latest_deliveries.body) as body_json (doc)
    -- each field looked up once a row (see `fields` below for why a subquery with a limit)
    cross join lateral (  -- noqa: ST05
        select
            {%- for field in known_fields %}
            body_json.doc ->> '{{ field }}' as {{ field_columns.get(field, field) }},
            jsonb_typeof(body_json.doc -> '{{ field }}') as {{ field }}_type,
            {%- endfor %}
            jsonb_typeof(body_json.doc) as doc_type
        limit 1
    ) as body_fields
),

fields as (
    select
        parsed.*,
        derived.app_version_parts,
        derived.ip
    from parsed
    -- computed once a row: Postgres keeps a subquery with a limit whole, while plain columns
    -- would be inlined and each regex run again wherever a column below uses it. (Postgres
    -- would also cache its results keyed on the whole body, which never repeats: the
    -- pre-hook turns that cache off for this model.)
    cross join lateral (  -- noqa: ST05
        select
            {{ app_version_parts('parsed.app_version') }} as app_version_parts,
            {{ canonical_ip('parsed.ip_text') }} as ip
        limit 1
    ) as derived
),

validated as (
    select
        fields.*,
        checks.reject_reason
    from fields
    -- evaluated once a row: as a plain column the planner copies this CASE into each
    -- expression below that uses reject_reason (three times: most of a build at 1M rows)
    cross join lateral (  -- noqa: ST05
        select
            case
                when fields.body = '' then 'erased: body erased by `logins pii forget` before it was processed'
                when fields.doc is null then 'not_json: body is not valid JSON'
                when fields.doc_type != 'object' then 'not_object: body is a JSON ' || fields.doc_type
                -- JSON allows a key twice and Postgres keeps the last: which one was meant is
                -- unknown. Every key in the text is followed by a colon, so a body with no more
                -- colons than the known keys it holds cannot repeat one, and only other bodies
                -- are parsed again to count their keys (the count costs more than the parse).
                when
                    octet_length(fields.body) - octet_length(replace(fields.body, ':', ''))
                    > (
                        {%- for field in known_fields %}
                        {{ '+ ' if not loop.first }}(fields.{{ field }}_type is not null)::int
                        {%- endfor %}
                    )
                    and (select count(*) from json_object_keys(fields.body::json))
                    != (select count(*) from jsonb_object_keys(fields.doc))
                    then 'duplicate_key: a key appears more than once'
                {%- for field in required_strings %}
                when fields.{{ field }}_type is null then 'missing_field: {{ field }}'
                {%- endfor %}
                {%- for field in required_strings %}
                when fields.{{ field }}_type != 'string'
                    then 'wrong_type: {{ field }} is ' || fields.{{ field }}_type || ', not string'
                {%- endfor %}
                when fields.locale_type not in ('string', 'null')
                    then 'wrong_type: locale is ' || fields.locale_type || ', not string or null'
                {%- for field in known_fields %}
                when fields.{{ field_columns.get(field, field) }} = '' then 'empty_field: {{ field }}'
                {%- endfor %}
                -- JSON text cannot hold a control character unescaped: without a backslash in
                -- the body there is none, and the regexes are skipped
                {%- for field in ['user_id', 'device_type', 'device_id', 'locale'] %}
                when
                    strpos(fields.body, '\') > 0 and fields.{{ field }} ~ '[[:cntrl:]]'
                    then 'invalid_characters: {{ field }} has control characters'
                {%- endfor %}
                {%- for field, max_length in max_lengths.items() %}
                when
                    length(fields.{{ field }}) > {{ max_length }}
                    then 'too_long: {{ field }} is longer than {{ max_length }} characters'
                {%- endfor %}
                when fields.ip is null then 'invalid_ip: ip is not an IPv4 or IPv6 address'
                when fields.app_version_parts is null
                    then
                        'invalid_app_version: app_version is not MAJOR.MINOR[.PATCH] '
                        || '(major 0-9999, minor and patch 0-99)'
                when fields.sent_at is null then 'missing_sent_timestamp: SQS gave no SentTimestamp'
            end as reject_reason
        limit 1
    ) as checks
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
        case when reject_reason is null then {{ app_version_code('app_version_parts') }} end as app_version_code,
        (sent_at at time zone 'UTC')::date as create_date,
        split_part(reject_reason, ':', 1) as reject_code,
        reject_reason
    from validated
)

select * from final
