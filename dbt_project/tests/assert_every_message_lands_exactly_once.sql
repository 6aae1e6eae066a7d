{#- Conservation: every message of a load committed before this build started ends in
    exactly one of user_logins or the rejects, and nothing is there that never landed.
    (Loads that commit while the build runs are the next build's work.)
    It reads every table whole, so it runs in `--selector full_check`, not in each build. -#}
{{ config(tags=['full_check']) }}

with

committed_loads as (
    select
        load_id,
        inserted_at
    from {{ source('sqs', '_dlt_loads') }}
    where status = 0
),

landed_messages as (
    select distinct
        messages.message_id,
        committed_loads.inserted_at < '{{ run_started_at }}'::timestamptz as landed_before_build
    from {{ source('sqs', 'login_messages') }} as messages
    inner join committed_loads on messages._dlt_load_id = committed_loads.load_id
),

outcomes as (
    select message_id from {{ ref('user_logins') }}
    union all
    select message_id from {{ ref('stg_sqs__login_event_rejects') }}
),

outcome_counts as (
    select
        message_id,
        count(*) as outcome_count
    from outcomes
    group by message_id
),

problems as (
    select
        landed_messages.message_id,
        'landed but in ' || coalesce(outcome_counts.outcome_count, 0) || ' outcomes' as problem
    from landed_messages
    left join outcome_counts on landed_messages.message_id = outcome_counts.message_id
    where
        landed_messages.landed_before_build
        and coalesce(outcome_counts.outcome_count, 0) != 1

    union all

    select
        outcome_counts.message_id,
        'in user_logins or rejects but never landed' as problem
    from outcome_counts
    where not exists (
            select from landed_messages
            where landed_messages.message_id = outcome_counts.message_id
        )
)

select * from problems
