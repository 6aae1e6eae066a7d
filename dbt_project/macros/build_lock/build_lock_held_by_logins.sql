{#- True when the session `logins run` named in LOGINS_BUILD_LOCK_PID holds the lock: this
    build is that one, and takes nothing (taking it would wait for itself). -#}
{% macro build_lock_held_by_logins() -%}
    {%- set pid = env_var('LOGINS_BUILD_LOCK_PID', '0') | int -%}
    exists (
        select from pg_locks
        where
            locktype = 'advisory'
            and granted
            and pid = {{ pid }}
            and objsubid = 1
            and classid = (({{ build_lock_key() }}::bigint >> 32) & 4294967295)::oid
            and objid = ({{ build_lock_key() }}::bigint & 4294967295)::oid
    )
{%- endmacro %}
