{#- Pre-hook: a build's hash joins and sorts over the new rows fit in memory rather than
    spill to disk. -#}
{% macro hashes_in_memory() -%}
    set local work_mem = '256MB'
{%- endmacro %}
