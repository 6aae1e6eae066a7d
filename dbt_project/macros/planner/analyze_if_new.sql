{#- Post-hook: a table just created has no statistics until autovacuum gets to it, and the
    plans of the models that read it at once are poor without them. -#}
{% macro analyze_if_new() -%}
    {{ 'select 1' if is_incremental() else 'analyze ' ~ this }}
{%- endmacro %}
