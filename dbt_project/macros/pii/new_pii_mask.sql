{#- One kind's mask in a row of new_pii_masks() (masks come in the order of pii_kinds()). -#}
{% macro new_pii_mask(kind, alias) -%}
    {{ alias }}.masks[{{ pii_kinds().index(kind) + 1 }}]
{%- endmacro %}
