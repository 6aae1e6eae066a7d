{#- Pre-hook: Memoize caches a function's results keyed on its inputs, here whole bodies that
    never repeat, so it only costs memory and time. -#}
{% macro without_memoize() -%}
    set local enable_memoize = off
{%- endmacro %}
