{#- One row per valid login message: the exercise's table, with the PII masked.
    masked_ip / masked_device_id are keyed HMAC-SHA256 (hex) of the canonical value, so
    equal values get equal masks (count duplicates with them) and the raw values never reach
    this schema. Incremental on the SQS message id. Never fully refreshed: once raw bodies are
    purged (`logins pii purge-raw`) this table is the record, and cannot be rebuilt from raw. -#}
{{
    config(
        materialized='incremental',
        unique_key='message_id',
        on_schema_change='append_new_columns',
        full_refresh=false,
        pre_hook="{{ seal_new_pii() }}",
        post_hook="{{ ensure_output_indexes() }}",
    )
}}

with

login_events as (
    select events.*
    from {{ ref('stg_sqs__login_events') }} as events
    where
        events.reject_reason is null
        and {{ not_yet_processed('events') }}
),

final as (
    select
        user_id::varchar(128) as user_id,
        device_type::varchar(32) as device_type,
        {{ mask_pii('ip', 'ip') }}::varchar(256) as masked_ip,
        {{ mask_pii('device_id', 'device_id') }}::varchar(256) as masked_device_id,
        {{ var('pii_schema') }}.mask_key_version() as mask_key_version,
        locale::varchar(32) as locale,
        app_version_code as app_version,
        create_date,
        message_id::varchar(128) as message_id,
        app_version::varchar(32) as app_version_string,
        sent_at,
        loaded_at
    from login_events
)

select * from final
