{#- Pre-hook of user_logins: masks the IPs and device ids of the rows this build adds, all at
    once, into a temporary table keyed by message id that the model joins (`new_pii_masks()`),
    and seals each value the vault does not hold yet, encrypted for the holder of the recovery
    private key (`logins pii recover`). pii.mask_rows() makes the masks with a key dbt never
    sees, two HMACs a row, in parallel (row by row through pii.mask() cost five times as much,
    most of it looking up the key; masking distinct values kept the HMACs out of the parallel
    workers). pii.seal_new() checks each new mask against its value before it seals it. Staging
    is a table built before this model, so the hook and the model see the same rows. The vault
    is a plain table, not a dbt model: a full refresh can never drop it. -#}
{% macro mask_new_pii() -%}
    -- the model's join holds every new row's masks in memory rather than spill to disk
    set local work_mem = '256MB';

    -- the PII of the rows this build adds, keyed by message id (one row each in staging)
    create or replace temporary view new_login_pii as
    select
        events.message_id as row_key,
        {%- for kind in pii_kinds() %}
        events.{{ kind }}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ ref('stg_sqs__login_events') }} as events
    where
        events.reject_reason is null
        and {{ not_yet_processed('events') }};

    drop table if exists {{ new_pii_masks() }} cascade;

    create temporary table {{ new_pii_masks(qualified=false) }} as
    select * from {{ var('pii_schema') }}.mask_rows(
        'pg_temp.new_login_pii', array['{{ pii_kinds() | join("', '") }}']
    );

    analyze {{ new_pii_masks() }};
    {%- if is_incremental() %}
    -- an incremental build's new rows are found by load (not_yet_processed), which the
    -- planner estimates at one row: without an index it scanned the masks for each of them
    create index on {{ new_pii_masks() }} (row_key);
    {%- endif %}

    -- each new value beside its mask, as the vault takes them (read only with a recovery key)
    create or replace temporary view new_pii_values as
    {%- for kind in pii_kinds() %}
    select
        '{{ kind }}' as kind,
        new_rows.{{ kind }} as value,
        {{ new_pii_mask(kind, 'masks') }} as mask
    from pg_temp.new_login_pii as new_rows
    inner join {{ new_pii_masks() }} as masks on new_rows.row_key = masks.row_key
    {{ 'union all' if not loop.last else ';' }}
    {%- endfor %}

    select {{ var('pii_schema') }}.seal_new('pg_temp.new_pii_values')
{%- endmacro %}

{#- The kinds of PII user_logins masks: each a column of staging, and a domain of the masks. -#}
{% macro pii_kinds() -%}
    {{ return(['ip', 'device_id']) }}
{%- endmacro %}

{#- The pre-hook's masks (row_key, masks, key_version); the post-hook drops them. -#}
{% macro new_pii_masks(qualified=true) -%}
    {{ 'pg_temp.' if qualified }}new_pii_masks
{%- endmacro %}

{#- One kind's mask in a row of new_pii_masks() (masks come in the order of pii_kinds()). -#}
{% macro new_pii_mask(kind, alias) -%}
    {{ alias }}.masks[{{ pii_kinds().index(kind) + 1 }}]
{%- endmacro %}
