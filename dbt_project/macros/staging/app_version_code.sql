{#- app_version as an integer that sorts like the version and never collides:

        major * 10000 + minor * 100 + patch     (patch 0 when absent)

    so 0.96 -> 9600, 2.3.0 -> 20300, 2.00 -> 20000, 3.7 -> 30700, 0.2.6 -> 206, 2.6 -> 20600.
    Components are read as integers (semantic versioning), so 2.3 and 2.3.0 are one version
    and get one code; the exact string is kept beside it. Minor and patch must be 0-99 and
    major 0-9999, or codes could collide or overflow: such versions are rejected.

    app_version_code(value) is that integer, or null when the value is not such a version. The
    shape is checked with `~` and the parts read with split_part: regexp_match with capture
    groups costs about 20 times more. -#}
{% macro app_version_code(value) -%}
    case
        when {{ value }} ~ '^[0-9]{1,4}\.[0-9]{1,2}(\.[0-9]{1,2})?$'
            then
                split_part({{ value }}, '.', 1)::integer * 10000
                + split_part({{ value }}, '.', 2)::integer * 100
                + coalesce(nullif(split_part({{ value }}, '.', 3), '')::integer, 0)
    end
{%- endmacro %}
