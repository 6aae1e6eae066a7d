{#- Refuses to build over code another role attached to the tables dbt reads or writes (the
    loader owns raw: a policy, a rule or a view in place of its table would run the loader's
    code with the transformer's rights). pipeline_lib.lock_and_list_attached_code()
    (loader/sql/pipeline_lib.sql, the CLI's check too) locks each table for the rest of the
    model's transaction, so nothing can be attached between the check and the model's own
    statements, and names what it carries. Every model checks its own table before it writes
    it (a project pre-hook: for writing when someone else owns it, a superuser's build over
    the transformer's tables); staging, the one model that reads raw, checks the sources too.
    `checks` are (schema, table, for_write) triples. -#}
{% macro refuse_attached_code(checks) -%}
    {%- if not execute or not checks -%}
        {{ return('select 1') }}
    {%- endif -%}
    do $refuse$
    declare
        checked record;
        problems text;
    begin
        if to_regprocedure('pipeline_lib.lock_and_list_attached_code(regclass, boolean, text)') is null then
            return;  -- no `logins db init` yet: no pii schema either, nothing to protect
        end if;
        for checked in
            select
                c.oid::regclass as rel,
                given.for_write and c.relowner != (
                    select r.oid from pg_catalog.pg_roles as r where r.rolname = current_user
                ) as for_write
            from (values
                {%- for schema, name, for_write in checks %}
                ('{{ schema }}', '{{ name }}', {{ for_write }}){{ ',' if not loop.last }}
                {%- endfor %}
            ) as given (schema_name, table_name, for_write)
            inner join pg_catalog.pg_namespace as n on given.schema_name = n.nspname
            inner join pg_catalog.pg_class as c
                on n.oid = c.relnamespace and given.table_name = c.relname
        loop
            select string_agg(found.problem, ', ' order by found.problem) into problems
            from pipeline_lib.lock_and_list_attached_code(
                checked.rel, checked.for_write, '{{ env_var("ROLES__PREFIX", "logins_") }}owner'
            ) as found (problem);
            if problems is not null then
                raise exception 'refusing to build over %: it carries code that would run with the rights of %: %',
                    checked.rel, current_user, problems
                    using hint = 'its owner must remove it (or find out who added it); then build again';
            end if;
        end loop;
    end
    $refuse$
{%- endmacro %}
