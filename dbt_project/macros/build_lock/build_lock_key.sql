{#- The one advisory lock every build of a database takes (loader/transform.py takes it too). -#}
{% macro build_lock_key() -%}
    hashtext('logins dbt build')
{%- endmacro %}
