-- PII support, installed by `logins db init` (idempotent), owned by whoever runs it (an admin).
--   pii.hmac_keys      the masking keys; only this file's functions read them
--   pii.mask()         keyed HMAC-SHA256 that dbt calls; pii.mask_key_version() says which key
--   pii.recovery_keys  OpenPGP public keys the originals are encrypted to (no private key here)
--   pii.vault          each distinct masked value once, encrypted (envelope: pii.data_keys)
--   pii.audit_log      append-only record of every recovery, erasure, purge and rotation
--   pii.mask_rows()    masks the new rows' values at once (dbt's pre-hook)
--   pii.mask_new()     masks a set of distinct values at once (`pii remask`)
--   pii.seal_new()     fills the vault with those of them it lacks; encrypts only
--   pii.recover(), pii.shred(), pii.rotate_hmac_key(), pii.audit()  the audited ways in
create extension if not exists pgcrypto;

create schema if not exists pii;

revoke all on schema pii from public;

create table if not exists pii.hmac_keys (
    key_version integer primary key,
    key bytea not null check (length(key) >= 32),
    is_current boolean not null default false,
    created_at timestamptz not null default now()
);

create unique index if not exists hmac_keys_one_current on pii.hmac_keys (is_current)
where is_current;

revoke all on table pii.hmac_keys from public;

-- The mask itself: HMAC-SHA256 (hex) of kind:value. kind keeps domains apart, so an IP and a
-- device id that are the same string get different masks. A plain SQL function, so Postgres
-- inlines it into the queries below: masking a set costs one HMAC a value. Stable, as
-- convert_to() is: declared immutable, it was not inlined and cost twice as much (2M HMACs,
-- 4.1 s against 2.2 s).
create or replace function pii.hmac_hex(kind text, value text, key bytea)
returns text
language sql
stable strict parallel safe
as $fn$
    select encode(@pgcrypto@.hmac(convert_to(kind || ':' || value, 'UTF8'), key, 'sha256'), 'hex')
$fn$;

revoke all on function pii.hmac_hex(text, text, bytea) from public;

-- Refuses to go on, with the fix, while no HMAC key is current (every masking function asks).
create or replace function pii.require_hmac_key()
returns void
language plpgsql
stable parallel safe
set search_path = pg_catalog, pg_temp
as $fn$
begin
    if not exists (select from pii.hmac_keys as k where k.is_current) then
        raise exception 'no HMAC key is installed in pii.hmac_keys'
            using hint = 'run `logins db init` with PII__HMAC_KEY set (the demo generates one)';
    end if;
end
$fn$;

revoke all on function pii.require_hmac_key() from public;

-- One value's mask with the current key (the CLI's erasure and checks; dbt masks sets).
create or replace function pii.mask(kind text, value text)
returns text
language plpgsql
stable strict parallel safe
security definer
set search_path = pg_catalog, pg_temp
as $fn$
declare
    current_key bytea;
begin
    select k.key into current_key from pii.hmac_keys as k where k.is_current;
    if current_key is null then
        perform pii.require_hmac_key();
    end if;
    return pii.hmac_hex(kind, value, current_key);
end
$fn$;

-- The version of the key pii.mask() uses now (stable: one answer per statement, like mask()).
create or replace function pii.mask_key_version()
returns integer
language sql
stable parallel safe
security definer
set search_path = pg_catalog, pg_temp
as $fn$
    select k.key_version from pii.hmac_keys as k where k.is_current
$fn$;

create table if not exists pii.recovery_keys (
    recovery_key_id integer generated always as identity primary key,
    fingerprint text not null unique,
    public_key bytea not null,
    is_current boolean not null default false,
    created_at timestamptz not null default now()
);

create unique index if not exists recovery_keys_one_current on pii.recovery_keys (is_current)
where is_current;

revoke all on table pii.recovery_keys from public;

-- Envelope encryption: each sealing batch gets a random data key, stored only encrypted to the
-- recovery public key (pgp_pub_encrypt, ~120 us); each value is encrypted with that data key
-- (pgp_sym_encrypt, ~15 us). Both are plain OpenPGP messages; the data key is made inside the
-- statement and never stored or sent in the clear.
create table if not exists pii.data_keys (
    data_key_id bigint generated always as identity primary key,
    recovery_key_id integer not null references pii.recovery_keys,
    wrapped_key bytea not null,
    created_at timestamptz not null default now()
);

revoke all on table pii.data_keys from public;

create table if not exists pii.vault (
    kind text not null,
    mask text not null,
    data_key_id bigint not null references pii.data_keys,
    ciphertext bytea not null,
    sealed_at timestamptz not null default now(),
    primary key (kind, mask)
);

revoke all on table pii.vault from public;

-- Masks the (kind, value) rows of `source` (a table or view; each pair once) with the current
-- HMAC key: every value with its mask and the key's version. One query for the whole set, so
-- a mask costs one HMAC (pii.mask() costs five times that a call, most of it looking the key
-- up), and the caller never sees the key. Read-only, so Postgres can run it in parallel.
create or replace function pii.mask_new(source regclass)
returns table (kind text, value text, mask text, key_version integer)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $fn$
begin
    perform pii.require_hmac_key();
    -- the key in a subquery, computed once: joined instead, it made the plan twice as slow
    return query execute format($sql$
        select
            s.kind::text,
            s.value::text,
            pii.hmac_hex(s.kind, s.value, (select k.key from pii.hmac_keys as k where k.is_current)),
            (select k.key_version from pii.hmac_keys as k where k.is_current)
        from %s as s
        where s.value is not null
    $sql$, source);
end
$fn$;

revoke all on function pii.mask_new(regclass) from public;

-- Masks each row of `source` at once: the columns named by `kinds` (a column per kind, the
-- kind its domain), keyed by the row's `row_key` column; masks in the order of `kinds`, null
-- for a null value. No distinct first: each row's HMACs are made where the row is read, so
-- Postgres computes them in parallel workers (a distinct before them kept them in the leader:
-- 1M rows: 4.7 s as distinct values, 2.9 s as rows).
create or replace function pii.mask_rows(source regclass, kinds text[])
returns table (row_key text, masks text[], key_version integer)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $fn$
declare
    mask_list text;
begin
    perform pii.require_hmac_key();
    select string_agg(
        format(
            'pii.hmac_hex(%L, s.%I::text, (select k.key from pii.hmac_keys as k where k.is_current))',
            kind, kind
        ),
        ', ' order by position
    )
    into mask_list
    from unnest(kinds) with ordinality as kinds_given (kind, position);
    if mask_list is null then
        raise exception 'pii.mask_rows() needs at least one kind to mask';
    end if;
    return query execute format($sql$
        select
            s.row_key::text,
            array[%s],
            (select k.key_version from pii.hmac_keys as k where k.is_current)
        from %s as s
    $sql$, mask_list, source);
end
$fn$;

revoke all on function pii.mask_rows(regclass, text[]) from public;

-- Seals the (kind, value, mask) rows of `source` (values with the masks pii.mask_new() or
-- pii.mask_rows() made for them) whose mask the vault does not hold yet. Each new mask is
-- checked against its value with the current key first, so no caller can file a value under
-- another value's mask. Does nothing while no recovery key is installed (`logins pii keygen`).
-- Returns how many it sealed.
create or replace function pii.seal_new(source regclass)
returns integer
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $fn$
declare
    sealed integer;
    forged integer;
begin
    if not exists (select from pii.recovery_keys where is_current) then
        return 0;
    end if;
    execute format($sql$
        create temporary table pii_seal_pending on commit drop as
        select distinct on (m.kind, m.mask) m.kind::text as kind, m.value::text as value, m.mask::text as mask
        from %s as m
        where
            m.value is not null
            and not exists (select from pii.vault as v where v.kind = m.kind and v.mask = m.mask)
    $sql$, source);
    select count(*) into forged
    from pii_seal_pending as p
    where p.mask != pii.hmac_hex(p.kind, p.value, (select k.key from pii.hmac_keys as k where k.is_current));
    if forged > 0 then
        raise exception '% value(s) given to pii.seal_new() do not match their masks', forged
            using hint = 'pass each value with the mask pii.mask_new() or pii.mask_rows() made for it';
    end if;

    with

    data_key as (
        select
            rk.recovery_key_id,
            rk.public_key,
            encode(@pgcrypto@.gen_random_bytes(32), 'hex') as secret
        from pii.recovery_keys as rk
        where rk.is_current and exists (select from pii_seal_pending)
    ),

    wrapped as (
        insert into pii.data_keys (recovery_key_id, wrapped_key)
        select data_key.recovery_key_id, @pgcrypto@.pgp_pub_encrypt(data_key.secret, data_key.public_key, 'cipher-algo=aes256')
        from data_key
        returning data_key_id
    )

    insert into pii.vault (kind, mask, data_key_id, ciphertext)
    select
        p.kind,
        p.mask,
        wrapped.data_key_id,
        @pgcrypto@.pgp_sym_encrypt(p.value, data_key.secret, 'cipher-algo=aes256, s2k-mode=1')
    from pii_seal_pending as p
    cross join data_key
    cross join wrapped
    on conflict (kind, mask) do nothing;
    get diagnostics sealed = row_count;
    drop table pii_seal_pending;
    return sealed;
end
$fn$;

revoke all on function pii.seal_new(regclass) from public;

create table if not exists pii.audit_log (
    audit_id bigint generated always as identity primary key,
    action text not null,
    actor text not null default session_user,
    at timestamptz not null default clock_timestamp(),
    request text not null,
    value_count integer not null
);

revoke all on table pii.audit_log from public;

-- Append-only, for its owner too (a superuser can still drop the trigger: that is DDL, logged).
create or replace function pii.refuse_audit_change()
returns trigger
language plpgsql
as $fn$
begin
    raise exception 'pii.audit_log is append-only';
end
$fn$;

drop trigger if exists audit_log_append_only on pii.audit_log;
create trigger audit_log_append_only before update or delete on pii.audit_log
for each row execute function pii.refuse_audit_change();

drop trigger if exists audit_log_no_truncate on pii.audit_log;
create trigger audit_log_no_truncate before truncate on pii.audit_log
for each statement execute function pii.refuse_audit_change();

create or replace function pii.audit(action text, request text, value_count integer)
returns void
language sql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $fn$
    insert into pii.audit_log (action, request, value_count) values (action, request, value_count)
$fn$;

revoke all on function pii.audit(text, text, integer) from public;

-- The only way to read the vault: returns the ciphertexts asked for and records the request.
create or replace function pii.recover(request text, kinds text[], masks text[])
returns table (
    value_kind text, value_mask text, ciphertext bytea, data_key_id bigint, wrapped_key bytea
)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $fn$
declare
    found integer;
begin
    return query
    select v.kind, v.mask, v.ciphertext, v.data_key_id, k.wrapped_key
    from pii.vault as v
    inner join pii.data_keys as k on v.data_key_id = k.data_key_id
    inner join unnest(kinds, masks) as asked (kind, mask) on v.kind = asked.kind and v.mask = asked.mask;
    get diagnostics found = row_count;
    insert into pii.audit_log (action, request, value_count) values ('recover', request, found);
end
$fn$;

revoke all on function pii.recover(text, text[], text[]) from public;

-- Crypto-shredding: deletes the encrypted originals of these masks, so nothing can recover them.
create or replace function pii.shred(request text, kinds text[], masks text[])
returns integer
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $fn$
declare
    removed integer;
begin
    delete from pii.vault as v
    using unnest(kinds, masks) as asked (kind, mask)
    where v.kind = asked.kind and v.mask = asked.mask;
    get diagnostics removed = row_count;
    insert into pii.audit_log (action, request, value_count) values ('forget', request, removed);
    return removed;
end
$fn$;

revoke all on function pii.shred(text, text[], text[]) from public;

-- A new HMAC key, generated inside the database (it never travels), becomes current.
create or replace function pii.rotate_hmac_key()
returns integer
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $fn$
declare
    version integer;
begin
    lock table pii.hmac_keys in exclusive mode;
    select coalesce(max(k.key_version), 0) + 1 into version from pii.hmac_keys as k;
    update pii.hmac_keys set is_current = false where is_current;
    insert into pii.hmac_keys (key_version, key, is_current)
    values (version, @pgcrypto@.gen_random_bytes(32), true);
    insert into pii.audit_log (action, request, value_count)
    values ('rotate', 'hmac key version ' || version, 0);
    return version;
end
$fn$;

revoke all on function pii.rotate_hmac_key() from public;
