{#- The canonical text of an IP address, or null when the value is not one.

    IPv4 must be a strict dotted quad (no leading zeros, which some parsers read as octal); a
    valid one is already canonical. IPv6 must be in the text form of RFC 3986 (section 3.2.2,
    which RFC 4291 describes), checked by a regex built from that grammar; Postgres' inet then
    prints it back in its one compressed lowercase form, so two spellings of one address get
    one mask. The cast runs only on what the regex accepts, all of which inet reads: no
    exception block, so staging can run in parallel (tests/test_ip_addresses.py compares both
    on thousands of candidates; the one form inet reads and the regex does not is an IPv4
    tail of three numbers, ::1.2.3, which is no address). An IPv4-mapped IPv6 address
    (::ffff:a.b.c.d) is the IPv4 address. Prefixes (/n) and zone ids (%eth0) are not
    addresses. -#}
{% macro canonical_ip(value) -%}
    case
        when {{ value }} ~ '^{{ ipv4_pattern() }}$'
            then {{ value }}
        when {{ value }} like '%:%' and {{ value }} ~ '^{{ ipv6_pattern() }}$'
            then regexp_replace(
                host({{ value }}::inet),
                '^::ffff:([0-9]+\.[0-9]+\.[0-9]+\.[0-9]+)$',
                '\1'
            )
    end
{%- endmacro %}
