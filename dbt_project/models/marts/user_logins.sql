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
        pre_hook="{{ mask_new_pii() }}",
        post_hook=["{{ ensure_output_indexes() }}", "drop table if exists {{ new_pii_masks() }} cascade"],
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

-- made by the pre-hook for exactly these rows, one row each (a left join: a row without its
-- masks fails the build on the not-null contract rather than go missing)
login_masks as (
    select
        new_masks.row_key as message_id,
        {{ new_pii_mask('ip', 'new_masks') }} as masked_ip,
        {{ new_pii_mask('device_id', 'new_masks') }} as masked_device_id,
        new_masks.key_version
    from {{ new_pii_masks() }} as new_masks
),

final as (
    select
        login_events.user_id::varchar(128) as user_id,
        login_events.device_type::varchar(32) as device_type,
        login_masks.masked_ip::varchar(256) as masked_ip,
        login_masks.masked_device_id::varchar(256) as masked_device_id,
        login_masks.key_version as mask_key_version,
        login_events.locale::varchar(32) as locale,
        login_events.app_version_code as app_version,
        login_events.create_date,
        login_events.message_id::varchar(128) as message_id,
        login_events.app_version::varchar(32) as app_version_string,
        login_events.sent_at,
        login_events.loaded_at
    from login_events
    left join login_masks
        on login_events.message_id = login_masks.message_id
)

select * from final
