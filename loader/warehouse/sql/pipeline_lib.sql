-- Functions every pipeline role may call and none but the owner role may change, installed by
-- `logins db init` (idempotent). raw's generated `body_is_json` column calls is_json(), so an
-- erasure that rewrites a body runs this code, not code of the raw table's owner; erasure finds
-- a body's user with json_user_id(). Neither reads a table.
create schema if not exists pipeline_lib;

revoke all on schema pipeline_lib from public;
grant usage on schema pipeline_lib to public;

-- Postgres 15 has no pg_input_is_valid: a failed cast is caught. The exception block is a
-- subtransaction, which a parallel query refuses: computed as each row lands.
create or replace function pipeline_lib.is_json(value text)
returns boolean
language plpgsql
immutable strict parallel unsafe
set search_path = pg_catalog, pg_temp
as $fn$
begin
    return value::jsonb is not null;
exception when others then
    return false;
end
$fn$;

-- The user_id a body names, as JSON reads it (escapes decoded): null unless the body is a JSON
-- object whose user_id is a string.
create or replace function pipeline_lib.json_user_id(value text)
returns text
language plpgsql
immutable strict parallel unsafe
set search_path = pg_catalog, pg_temp
as $fn$
declare
    doc jsonb;
begin
    begin
        doc := value::jsonb;
    exception when others then
        return null;
    end;
    if jsonb_typeof(doc) = 'object' and jsonb_typeof(doc -> 'user_id') = 'string' then
        return doc ->> 'user_id';
    end if;
    return null;
end
$fn$;

revoke all on all functions in schema pipeline_lib from public;
grant execute on all functions in schema pipeline_lib to public;

-- What code a table carries that would run with the rights of whoever reads it (policies,
-- rules, a child's) or, with `for_write`, writes it (triggers, and the functions, operators and
-- types its defaults, generated columns, checks, indexes and columns use), unless a superuser,
-- the caller or `trusted_role` owns that code. One line per finding; none for a clean table.
-- It reads the catalogs only and runs with its caller's rights; callers use it through
-- lock_and_list_attached_code() below.
create or replace function pipeline_lib.attached_code(
    rel regclass, for_write boolean, trusted_role text
)
returns setof text
language sql
stable
set search_path = pg_catalog, pg_temp
as $fn$
    select format(
        'it is a %s, not a plain table',
        case c.relkind
            when 'v' then 'view' when 'm' then 'materialized view'
            when 'p' then 'partitioned table' when 'f' then 'foreign table' else 'relation'
        end
    )
    from pg_class as c where c.oid = rel and c.relkind != 'r'
    union all
    select 'row-level security' from pg_class as c
    where c.oid = rel and (c.relrowsecurity or c.relforcerowsecurity)
    union all
    select format('rule %I', r.rulename) from pg_rewrite as r where r.ev_class = rel
    union all
    select format('child table %s', i.inhrelid::regclass) from pg_inherits as i
    where i.inhparent = rel
    union all
    select format('trigger %I', t.tgname) from pg_trigger as t
    where for_write and t.tgrelid = rel and not t.tgisinternal
    union all
    select format('%s %s of role %I', used.what, used.name, pg_get_userbyid(used.owner))
    from pg_depend as dep
    cross join lateral (
        select 'function' as what, p.oid::regprocedure::text as name, p.proowner as owner
        from pg_proc as p
        where dep.refclassid = 'pg_proc'::regclass and p.oid = dep.refobjid
        union all
        select 'operator', o.oid::regoperator::text, o.oprowner from pg_operator as o
        where dep.refclassid = 'pg_operator'::regclass and o.oid = dep.refobjid
        union all
        select 'type', t.oid::regtype::text, t.typowner from pg_type as t
        where dep.refclassid = 'pg_type'::regclass and t.oid = dep.refobjid
    ) as used
    where
        for_write
        and (
            (dep.classid = 'pg_attrdef'::regclass and dep.objid in (
                select d.oid from pg_attrdef as d where d.adrelid = rel
            ))
            or (dep.classid = 'pg_constraint'::regclass and dep.objid in (
                select k.oid from pg_constraint as k where k.conrelid = rel
            ))
            or (dep.classid = 'pg_class'::regclass and dep.objid in (
                select i.indexrelid from pg_index as i where i.indrelid = rel
                union all
                select rel::oid
            ))
        )
        and not exists (
            select from pg_roles as r
            where
                r.oid = used.owner
                and (r.rolsuper or r.rolname = current_user or r.rolname = trusted_role)
        )
$fn$;

revoke all on function pipeline_lib.attached_code(regclass, boolean, text) from public;
grant execute on function pipeline_lib.attached_code(regclass, boolean, text) to public;

-- attached_code() of `rel` once it is locked for the rest of the caller's transaction (for a
-- write in ROW EXCLUSIVE mode, which any write right allows and which holds off every command
-- that attaches code: CREATE TRIGGER, CREATE INDEX, ALTER TABLE, CREATE POLICY, CREATE RULE;
-- for a read in ACCESS SHARE mode, against what replaces the table or adds policies or rules), so nothing can be attached between the check and the caller's
-- statement; nothing for a null `rel` (a table not made yet). A view or another kind is named
-- before LOCK, which would also lock what it reads. Runs with its caller's rights: the CLI
-- (loader/attached_code.py) and dbt (refuse_attached_code()) both ask it.
create or replace function pipeline_lib.lock_and_list_attached_code(
    rel regclass, for_write boolean, trusted_role text
)
returns setof text
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $fn$
declare
    found text [];
begin
    if rel is null then
        return;
    end if;
    found := array(select pipeline_lib.attached_code(rel, false, trusted_role));
    if cardinality(found) = 0 then
        execute format(
            'lock table only %s in %s mode',
            rel,
            case when for_write then 'row exclusive' else 'access share' end
        );
        found := array(select pipeline_lib.attached_code(rel, for_write, trusted_role));
    end if;
    return query select distinct problem from unnest(found) as problem order by problem;
end
$fn$;

revoke all on function pipeline_lib.lock_and_list_attached_code(regclass, boolean, text)
from public;
grant execute on function pipeline_lib.lock_and_list_attached_code(regclass, boolean, text)
to public;
