{#- RFC 3986:  IPv6address = 6( h16 ":" ) ls32 / "::" 5( h16 ":" ) ls32
                          / [ *N( h16 ":" ) h16 ] "::" (6 - N)( h16 ":" ) ls32 ...
    one alternative per count of groups before "::" (see the RFC for the full table). -#}
{% macro ipv6_pattern() -%}
    {%- set h16 = '[0-9A-Fa-f]{1,4}' -%}
    {%- set ls32 = '(?:' ~ h16 ~ ':' ~ h16 ~ '|' ~ ipv4_pattern() ~ ')' -%}
    {%- set forms = ['(?:' ~ h16 ~ ':){6}' ~ ls32, '::(?:' ~ h16 ~ ':){5}' ~ ls32] -%}
    {%- for before in range(0, 7) -%}
        {%- set head = '(?:(?:' ~ h16 ~ ':){0,' ~ before ~ '}' ~ h16 ~ ')?::' -%}
        {%- if before < 5 -%}
            {%- do forms.append(head ~ '(?:' ~ h16 ~ ':){' ~ (4 - before) ~ '}' ~ ls32) -%}
        {%- elif before == 5 -%}
            {%- do forms.append(head ~ h16) -%}
        {%- else -%}
            {%- do forms.append(head) -%}
        {%- endif -%}
    {%- endfor -%}
    (?:{{ forms | join('|') }})
{%- endmacro %}
