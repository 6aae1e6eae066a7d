{#- Pre-hook of user_logins: masks the IPs and device ids of the rows this build adds, all at
    once, into a temporary table the model joins (`new_pii_masks()`), and seals each value the
    vault does not hold yet, encrypted for the holder of the recovery private key (`logins pii
    recover`). pii.mask_new() makes the masks with a key dbt never sees, one HMAC a value
    (row by row through pii.mask() cost five times as much, most of it looking up the key);
    pii.seal_new() checks each new mask against its value before it seals it. Staging is a
    table built before this model, so the hook and the model see the same rows. The vault is a plain table, not a dbt model: a full refresh can never drop it. -#}
{% macro mask_new_pii() -%}
    -- the joins below hold every new value in memory rather than spill to disk
    set local work_mem = '256MB';

    -- each kind on its own: one distinct over both kinds at once took ten times as long
    {%- set new_rows = not_yet_processed('events') %}
    create or replace temporary view new_pii_values as
    {%- for kind in ['ip', 'device_id'] %}
    select distinct
        '{{ kind }}' as kind,
        events.{{ kind }} as value
    from {{ ref('stg_sqs__login_events') }} as events
    where
        events.reject_reason is null
        and {{ new_rows }}
    {{ 'union all' if not loop.last else ';' }}
    {%- endfor %}

    drop table if exists {{ new_pii_masks() }};

    create temporary table {{ new_pii_masks(qualified=false) }} as
    select * from {{ var('pii_schema') }}.mask_new('pg_temp.new_pii_values');

    analyze {{ new_pii_masks() }};
    {%- if is_incremental() %}
    -- an incremental build's new rows are found by load (not_yet_processed), which the
    -- planner estimates at one row: without an index it scanned the masks for each of them
    create index on {{ new_pii_masks() }} (kind, value);
    {%- endif %}

    select {{ var('pii_schema') }}.seal_new('{{ new_pii_masks() }}')
{%- endmacro %}

{#- The pre-hook's masks (kind, value, mask, key_version); the post-hook drops them. -#}
{% macro new_pii_masks(qualified=true) -%}
    {{ 'pg_temp.' if qualified }}new_pii_masks
{%- endmacro %}
