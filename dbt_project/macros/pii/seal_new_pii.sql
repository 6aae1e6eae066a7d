{#- Pre-hook of user_logins: keeps each new distinct IP and device id, encrypted to the current
    recovery public key (pgcrypto pgp_pub_encrypt), in the vault beside its mask, so an
    authorized holder of the private key can recover it (`logins pii recover`). It reads the
    same new rows as the model (the shared incremental filter), so it costs in proportion to new
    data; a value already in the vault is not encrypted again. Nothing is done while no recovery
    key is installed (`logins pii keygen`). The vault is a plain table, not a dbt model: a full
    refresh can never drop it. -#}
{% macro seal_new_pii() -%}
    {%- set pii = var('pii_schema') -%}
    insert into {{ pii }}.vault (kind, mask, recovery_key_id, ciphertext)
    with

    new_values as (
        select distinct
            pairs.kind,
            pairs.value
        from {{ ref('stg_sqs__login_events') }} as events
        cross join lateral (
            values ('ip', events.ip), ('device_id', events.device_id)
        ) as pairs (kind, value)
        where
            events.reject_reason is null
            and {{ not_yet_processed('events') }}
            and exists (select from {{ pii }}.recovery_keys where is_current)
    ),

    masked as (
        select
            kind,
            value,
            {{ pii }}.mask(kind, value) as mask
        from new_values
    )

    select
        masked.kind,
        masked.mask,
        recovery_key.recovery_key_id,
        {{ pii }}.seal(masked.value, recovery_key.public_key)
    from masked
    inner join {{ pii }}.recovery_keys as recovery_key on recovery_key.is_current
    where not exists (
        select from {{ pii }}.vault as sealed
        where sealed.kind = masked.kind and sealed.mask = masked.mask
    )
    on conflict (kind, mask) do nothing
{%- endmacro %}
