{#- Pre-hook of user_logins: keeps each new distinct IP and device id, encrypted for the holder
    of the recovery private key, in the vault beside its mask (`logins pii recover`). It reads
    the model's incremental window including rows already built (a load that commits between
    this hook and the model is then sealed by the next build), so it costs in proportion to
    new data, and pii.seal_new() encrypts only values the vault does not hold yet, with a fresh
    data key per build that only the recovery key can unwrap. Nothing is done while no recovery
    key is installed (`logins pii keygen`). The vault is a plain table, not a dbt model: a full
    refresh can never drop it. -#}
{% macro seal_new_pii() -%}
    create or replace temporary view new_pii_values as
    select distinct
        pairs.kind,
        pairs.value
    from {{ ref('stg_sqs__login_events') }} as events
    cross join lateral (
        values ('ip', events.ip), ('device_id', events.device_id)
    ) as pairs (kind, value)
    where
        events.reject_reason is null
        -- a value `logins pii forget` erased from staging stays erased
        and pairs.value is not null
        and {{ not_yet_processed('events', held=true) }};

    select {{ var('pii_schema') }}.seal_new('pg_temp.new_pii_values')
{%- endmacro %}
