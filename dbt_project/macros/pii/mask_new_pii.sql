{#- Pre-hook of user_logins: masks the IPs and device ids of the rows this build adds, a
    chunk of rows a call, into a temporary table keyed by message id that the model joins
    (`new_pii_masks()`). The values go to pii.mask_values() as arrays (one per kind, in one
    order): it masks them with a key dbt never sees and seals each value the vault does not
    hold yet, encrypted for the holder of the recovery private key (`logins pii recover`). It
    is handed values, never a relation to read, so no code of dbt's (or of raw's owner) runs
    with its rights. Staging is a table built before this model, so the hook and the model see
    the same rows. The vault is a plain table, not a dbt model: a full refresh can never drop
    it. -#}
{% macro mask_new_pii() -%}
    {{ hashes_in_memory() }};

    drop table if exists {{ new_pii_masks() }} cascade;

    create temporary table {{ new_pii_masks(qualified=false) }} as
    with

    -- the PII of the rows this build adds, an array per kind, in chunks of at most
    -- `masking_chunk_rows` rows: one pii.mask_values() call a chunk, so a backlog of millions
    -- stays under Postgres' 1 GB limit on an array (one aggregate row a chunk: every
    -- array_agg of a chunk sees its rows in the same order)
    new_rows as (
        select
            array_agg(numbered.message_id) as row_keys,
            {%- for kind in pii_kinds() %}
            array_agg(numbered.{{ kind }}) as {{ kind }}_values,
            {%- endfor %}
            count(*)::integer as row_count
        from (
            select
                events.message_id,
                {%- for kind in pii_kinds() %}
                events.{{ kind }},
                {%- endfor %}
                (row_number() over () - 1) / {{ var('masking_chunk_rows') }} as chunk
            from {{ ref('stg_sqs__login_events') }} as events
            where
                events.reject_reason is null
                and {{ not_yet_processed('events') }}
        ) as numbered
        group by numbered.chunk
    ),

    -- every kind's values one after the other: masks[(k - 1) * row_count + n] is row n's mask
    -- of the k-th kind
    masked as (
        select
            new_rows.row_keys,
            new_rows.row_count,
            pii_masks.masks,
            pii_masks.key_version
        from new_rows
        cross join lateral {{ var('pii_schema') }}.mask_values(
            {% for kind in pii_kinds() -%}
            array_fill('{{ kind }}'::text, array[new_rows.row_count]){{ ' ||' if not loop.last else ',' }}
            {% endfor -%}
            {% for kind in pii_kinds() -%}
            new_rows.{{ kind }}_values{{ ' ||' if not loop.last }}
            {% endfor -%}
        ) as pii_masks
    )

    -- one slice per kind, unnested side by side with the row keys: one pass over each array
    -- (a subscript per row walks a text array from its start, which is quadratic)
    select
        keyed.row_key,
        array[
            {%- for kind in pii_kinds() %}
            keyed.{{ kind }}_mask{{ ',' if not loop.last }}
            {%- endfor %}
        ] as masks,
        masked.key_version
    from masked
    cross join lateral unnest(
        masked.row_keys,
        {%- for kind in pii_kinds() %}
        masked.masks[{{ loop.index0 }} * masked.row_count + 1:{{ loop.index }} * masked.row_count]{{ ',' if not loop.last }}
        {%- endfor %}
    ) as keyed (row_key{% for kind in pii_kinds() %}, {{ kind }}_mask{% endfor %});

    analyze {{ new_pii_masks() }};
    {{ index_underestimated_rows(new_pii_masks(), 'row_key') }};
{%- endmacro %}
