{#- The canonical text of an IP address, or null when the value is not one.

    IPv4 must be a strict dotted quad (no leading zeros, which some parsers read as octal); a
    valid one is already canonical. IPv6 is parsed by Postgres' inet and printed back in its
    one compressed lowercase form, so two spellings of one address get one mask. An
    IPv4-mapped IPv6 address (::ffff:a.b.c.d) is the IPv4 address. Prefixes (/n) and zone
    ids (%eth0) are not addresses. -#}
{% macro canonical_ip(value) -%}
    case
        when {{ value }} ~ '^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$'
            then {{ value }}
        when {{ value }} ~ '^[0-9A-Fa-f:.]+$' and {{ value }} like '%:%'
            then regexp_replace(
                host({{ parsing_function('try_parse_inet') }}({{ value }})),
                '^::ffff:([0-9]+\.[0-9]+\.[0-9]+\.[0-9]+)$',
                '\1'
            )
    end
{%- endmacro %}
