{#- One row per SQS message of a committed load (its last delivery): parsed, cast and
    validated. `reject_reason` is null for a valid login and names the first problem otherwise
    (codes: var reject_codes); the marts split on it, so every message lands in exactly one of
    user_logins or the rejects.

    An incremental table: each body is parsed once, when its load is new, and the marts and
    tests read the parsed rows. A redelivery replaces the row of its message. Unlogged (no
    WAL): it is derived from raw alone, and if a crash empties it the next build fills it
    again from raw, while the marts skip what they hold. Every function it calls is parallel
    safe, so Postgres can run it in parallel (JSON validity comes from raw's `body_is_json`,
    the IP check is a regex). -#}
{{
    config(
        materialized='incremental',
        unique_key='message_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        pre_hook=[
            "{{ refuse_attached_code_on_sources() }}",
            "{{ without_memoize() }}; {{ hashes_in_memory() }}",
        ],
        post_hook=[
            "{{ ensure_output_indexes() }}",
            "{{ analyze_if_new() }}",
        ],
        unlogged=true,
    )
}}

{%- set required_strings = ['user_id', 'device_type', 'ip', 'device_id', 'app_version'] -%}
{%- set known_fields = required_strings + ['locale'] -%}
{%- set max_lengths = {'user_id': 128, 'device_type': 32, 'locale': 32} -%}
{#- the column holding each field's text, where it is not the field's name -#}
{%- set field_columns = {'ip': 'ip_text'} -%}
{#- whether raw holds the loader's `body_is_json` (a catalog query: asked once) -#}
{%- set has_json_flag = raw_has_json_flag() -%}

{#- each field's text and JSON type, looked up once a row -#}
{%- set field_lookups = [] -%}
{%- for field in known_fields -%}
{%- do field_lookups.append((field_columns.get(field, field), 'text', "body_json.doc ->> '" ~ field ~ "'")) -%}
{%- do field_lookups.append((field ~ '_type', 'text', "jsonb_typeof(body_json.doc -> '" ~ field ~ "')")) -%}
{%- endfor -%}
{%- do field_lookups.append(('doc_type', 'text', 'jsonb_typeof(body_json.doc)')) -%}

with

deliveries as (
    select deliveries.*
    from {{ ref('base_sqs__login_deliveries') }} as deliveries
    where {{ not_yet_processed('deliveries', known_messages=true) }}
),

parsed as (
    select
        deliveries.*,
        body_json.doc,
        body_fields.*
    from deliveries
    {{ evaluate_once_per_row('body_json', [('doc', 'jsonb', parse_body_jsonb('deliveries', has_json_flag))]) }}
    {{ evaluate_once_per_row('body_fields', field_lookups) }}
),

derived as (
    select
        parsed.*,
        derived_fields.*
    from parsed
    {{ evaluate_once_per_row('derived_fields', [
        ('app_version_code', 'integer', app_version_code('parsed.app_version')),
        ('ip', 'text', canonical_ip('parsed.ip_text')),
    ]) }}
),


validated as (
    select
        derived.*,
        checks.reject_reason
    from derived
    -- the first problem found, in the order of var reject_codes
    {% call evaluate_once_per_row('checks', [('reject_reason', 'text')]) -%}
        case
            when derived.body = '' then {{ reject_reason('erased', 'body erased by `logins pii forget` before it was processed') }}
            when
                derived.body_encoding is not null
                then {{ reject_reason('unstorable_body', 'body held characters Postgres cannot store (kept base64)') }}
            when derived.doc is null then {{ reject_reason('not_json', 'body is not valid JSON') }}
            when derived.doc_type != 'object' then {{ reject_reason('not_object', 'body is a JSON ') }} || derived.doc_type
            -- Postgres keeps the last of a repeated key, and which one was meant is unknown.
            -- Every key is followed by a colon, so a body with no more colons than the known
            -- keys it holds repeats none; only other bodies are parsed again to count keys.
            when
                octet_length(derived.body) - octet_length(replace(derived.body, ':', ''))
                > (
                    {%- for field in known_fields %}
                    {{ '+ ' if not loop.first }}(derived.{{ field }}_type is not null)::int
                    {%- endfor %}
                )
                and {{ parsing_function('json_key_count') }}(derived.body::json)
                != {{ parsing_function('jsonb_key_count') }}(derived.doc)
                then {{ reject_reason('duplicate_key', 'a key appears more than once') }}
            {%- for field in required_strings %}
            when derived.{{ field }}_type is null then {{ reject_reason('missing_field', field) }}
            {%- endfor %}
            {%- for field in required_strings %}
            when derived.{{ field }}_type != 'string'
                then {{ reject_reason('wrong_type', field ~ ' is ') }} || derived.{{ field }}_type || ', not string'
            {%- endfor %}
            when derived.locale_type not in ('string', 'null')
                then {{ reject_reason('wrong_type', 'locale is ') }} || derived.locale_type || ', not string or null'
            {%- for field in known_fields %}
            when derived.{{ field_columns.get(field, field) }} = '' then {{ reject_reason('empty_field', field) }}
            {%- endfor %}
            -- JSON text holds no control character unescaped: without a backslash in the body
            -- there is none, and the regexes are skipped
            {%- for field in ['user_id', 'device_type', 'device_id', 'locale'] %}
            when
                strpos(derived.body, '\') > 0 and derived.{{ field }} ~ '[[:cntrl:]]'
                then {{ reject_reason('invalid_characters', field ~ ' has control characters') }}
            {%- endfor %}
            {%- for field, max_length in max_lengths.items() %}
            when
                length(derived.{{ field }}) > {{ max_length }}
                then {{ reject_reason('too_long', field ~ ' is longer than ' ~ max_length ~ ' characters') }}
            {%- endfor %}
            when derived.ip is null then {{ reject_reason('invalid_ip', 'ip is not an IPv4 or IPv6 address') }}
            when derived.app_version_code is null
                then {{ reject_reason(
                    'invalid_app_version',
                    'app_version is not MAJOR.MINOR[.PATCH] (major 0-9999, minor and patch 0-99)',
                ) }}
            when derived.sent_at is null then {{ reject_reason('missing_sent_timestamp', 'SQS gave no SentTimestamp') }}
        end
    {%- endcall %}
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
