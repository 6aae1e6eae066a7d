{#- app_version as an integer that sorts like the version and never collides:

        major * 10000 + minor * 100 + patch     (patch 0 when absent)

    so 0.96 -> 9600, 2.3.0 -> 20300, 2.00 -> 20000, 3.7 -> 30700, 0.2.6 -> 206, 2.6 -> 20600.
    Components are read as integers (semantic versioning), so 2.3 and 2.3.0 are one version
    and get one code; the exact string is kept beside it. Minor and patch must be 0-99 and
    major 0-9999, or codes could collide or overflow: such versions are rejected.

    app_version_parts(value) is its components as text[] (null when the value is not such a
    version); app_version_code(parts) encodes them. The shape is checked with `~` and split
    with string_to_array: regexp_match with capture groups costs about 20 times more. -#}
{% macro app_version_parts(value) -%}
    case
        when {{ value }} ~ '^[0-9]{1,4}\.[0-9]{1,2}(\.[0-9]{1,2})?$'
            then string_to_array({{ value }}, '.')
    end
{%- endmacro %}

{% macro app_version_code(parts) -%}
    ({{ parts }}[1]::integer * 10000 + {{ parts }}[2]::integer * 100 + coalesce({{ parts }}[3]::integer, 0))
{%- endmacro %}
