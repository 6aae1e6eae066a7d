{#- Builds of one database take turns: two at once would both insert the same new messages
    into staging, and one would fail on its unique message id. Every build takes one Postgres
    advisory lock, build_lock_key() (loader/transform.py takes the same one):

    - `logins run` holds it, session-level, on a connection of its own for the whole build,
      and names that session in LOGINS_BUILD_LOCK_PID: the hooks then see the lock is their own
      build's (build_lock_held_by_logins()) and take nothing.
    - a plain `dbt build` cannot hold a lock that long: dbt closes the connection of the
      on-run-start hooks before any model runs, and each model runs on a connection of its
      own. So the on-run-start hooks take it while they run (create_parsing_functions()
      replaces functions, which two sessions at once may not), and each model takes it for
      its transaction (a project pre-hook), which ends with the model's commit: a second
      build's model runs after the first's has committed, and sees its rows.

    `scope` is 'session' (on-run-start) or 'transaction' (a model's pre-hook). It tries first,
    so a build that has to wait says so once. -#}
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
