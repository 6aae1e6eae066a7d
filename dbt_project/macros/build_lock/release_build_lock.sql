{#- Ends on-run-start's hold, so the models' transactions can take the lock: dbt closes that
    connection anyway, but need not. -#}
{% macro release_build_lock() -%}
    select pg_advisory_unlock({{ build_lock_key() }})
    where exists (
        select from pg_locks
        where
            locktype = 'advisory'
            and granted
            and pid = pg_backend_pid()
            and objsubid = 1
            and classid = (({{ build_lock_key() }}::bigint >> 32) & 4294967295)::oid
            and objid = ({{ build_lock_key() }}::bigint & 4294967295)::oid
    )
{%- endmacro %}
