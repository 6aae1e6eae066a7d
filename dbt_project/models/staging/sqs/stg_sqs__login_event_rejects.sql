{#- Messages that are not a valid login, each with the reason, kept with the body exactly as
    received so they can be fixed and replayed. Incremental, so a reject is kept even after
    the raw body is purged (so never fully refreshed). Not readable by analysts (bodies can
    hold PII). -#}
{{
    config(
        materialized='incremental',
        unique_key='message_id',
        on_schema_change='append_new_columns',
        full_refresh=false,
        post_hook="{{ ensure_output_indexes() }}",
    )
}}

with

rejected_events as (
    select events.*
    from {{ ref('stg_sqs__login_events') }} as events
    where
        events.reject_reason is not null
        and {{ not_yet_processed('events') }}
        -- a message already built into user_logins whose raw body was erased since (forget,
        -- purge-raw) now reads as `erased`: it is still that row, not a new reject
        and not exists (
            select from {{ ref('user_logins') }} as logins
            where logins.message_id = events.message_id
        )
),

final as (
    select
        message_id,
        reject_code,
        reject_reason,
        body,
        sent_at,
        received_at,
        receive_count,
        loaded_at
    from rejected_events
)

select * from final
