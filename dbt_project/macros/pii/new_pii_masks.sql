{#- The pre-hook's masks (row_key, masks, key_version); the post-hook drops them. -#}
{% macro new_pii_masks(qualified=true) -%}
    {{ 'pg_temp.' if qualified }}new_pii_masks
{%- endmacro %}
