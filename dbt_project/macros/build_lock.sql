{#- Builds of one database take turns. Two at once both inserted the same new messages into
    staging, and one failed on its unique message id. Every build takes one Postgres advisory
    lock, keyed hashtext('logins dbt build') (loader/transform.py takes the same one):

    - `logins run` holds it, session-level, on a connection of its own for the whole build,
      and names that session in LOGINS_BUILD_LOCK_PID: the hooks below then see the lock is
      their own build's and take nothing (taking it would wait for themselves).
    - a plain `dbt build` cannot hold a lock that long: dbt closes the connection of the
      on-run-start hooks before any model runs, and each model runs on a connection of its
      own. So the on-run-start hooks take it while they run (create_parsing_functions()
      replaces functions, which two sessions at once may not), and each model takes it for
      its transaction (a project pre-hook), which ends with the model's commit: a second
      build's model runs after the first's has committed, and sees its rows. -#}

{% macro build_lock_key() -%}
    hashtext('logins dbt build')
{%- endmacro %}

{#- true when the session `logins run` named holds the lock: this build is that one -#}
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

{#- Takes the lock: scope 'session' (on-run-start) or 'transaction' (a model's pre-hook).
    Tries first, so a build that has to wait says so once. -#}
{% macro take_build_lock(scope='transaction') -%}
    {%- set suffix = '' if scope == 'session' else '_xact' -%}
    {%- set taken = true -%}
    {%- if execute -%}
        {%- set answer = run_query(
            'select ' ~ build_lock_held_by_logins() ~ ' or pg_try_advisory' ~ suffix
            ~ '_lock(' ~ build_lock_key() ~ ')'
        ) -%}
        {%- set taken = answer.columns[0].values()[0] -%}
    {%- endif -%}
    {%- if not taken -%}
        {{ log('waiting for another dbt build of this database to finish (builds take turns)', info=true) }}
        select pg_advisory{{ suffix }}_lock({{ build_lock_key() }})
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}

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
