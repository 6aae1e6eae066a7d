"""The `logins pii ...` and `logins roles ...` commands."""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from loader import logs
from loader.errors import ConfigurationError

if TYPE_CHECKING:
    from loader.names import Schemas


def schemas() -> Schemas:
    from loader.names import Schemas  # imported when used: the CLI starts fast
    from loader.privacy.roles import Roles
    from loader.settings import loader_settings, marts_schema, roles_settings

    return Schemas(
        raw=loader_settings().dataset_name,
        marts=marts_schema(),
        owner_role=Roles.named(roles_settings()).owner,
    )


def _private_key_path(args: argparse.Namespace) -> Path:
    from loader.privacy.keys import project_path
    from loader.settings import pii_settings

    if args.private_key:
        return Path(args.private_key)
    return project_path(pii_settings().recovery_key_file)


def _passphrase(confirm: bool) -> str:
    """PII__RECOVERY_PASSPHRASE, else a prompt: never a command-line argument (shell history,
    process lists)."""
    from loader.settings import pii_settings

    configured = pii_settings().recovery_passphrase
    if configured:
        return str(configured)
    if not sys.stdin.isatty():
        raise ConfigurationError(
            "no recovery passphrase: set PII__RECOVERY_PASSPHRASE or run in a terminal to be asked"
        )
    passphrase = getpass.getpass("recovery key passphrase: ")
    if confirm and getpass.getpass("again: ") != passphrase:
        raise ConfigurationError("the passphrases differ: run the command again")
    return passphrase


# The demo's recovery key (`make demo`): its passphrase is public, so it protects nothing.
DEMO_PASSPHRASE = "demo recovery passphrase, not for production"  # noqa: S105 (public)


def keygen(args: argparse.Namespace) -> None:
    from loader import warehouse
    from loader.privacy import recovery
    from loader.settings import postgres_credentials

    path = _private_key_path(args)
    credentials = postgres_credentials()
    if args.demo:
        with warehouse.connect(credentials) as conn:
            installed = recovery.has_recovery_key(conn)
        if installed:
            print("a recovery key is installed already: kept")
            return
        if path.exists():  # a demo key of another database: kept beside, never overwritten
            path.rename(path.with_name(f"{path.name}.{int(time.time())}.old"))
        passphrase = DEMO_PASSPHRASE
    else:
        passphrase = _passphrase(confirm=True)
    fingerprint = recovery.keygen(credentials, path, passphrase)
    print(f"wrote the recovery private key to {path} (mode 600; keep it, and its passphrase,")
    print("  away from the pipeline: in a vault or offline)")
    print(f"installed its public key {fingerprint} as the current recovery key")
    if args.demo:
        print(f'demo passphrase: PII__RECOVERY_PASSPHRASE="{DEMO_PASSPHRASE}"')


def recover(args: argparse.Namespace) -> None:
    from loader.privacy import recovery
    from loader.settings import postgres_credentials

    if args.masked_ip:
        request = ("ip", args.masked_ip)
    elif args.masked_device_id:
        request = ("device_id", args.masked_device_id)
    else:
        request = ("user_id", args.user_id)
    recovered, missing = recovery.recover(
        postgres_credentials(), schemas(), _private_key_path(args), _passphrase(False), request
    )
    for value in recovered:
        print(f"{value.kind}\t{value.mask}\t{value.value}")
    if missing:
        print(
            f"{missing} mask(s) have no recoverable original (erased, or masked before a "
            "recovery key was installed)",
            file=sys.stderr,
        )
    if not recovered:
        raise ConfigurationError(f"nothing to recover for {request[0]} {request[1]}")


def forget(args: argparse.Namespace) -> None:
    from loader.privacy import erasure
    from loader.settings import postgres_credentials

    erasure.check_user_id(args.user_id)
    _settle_pending_loads()
    erasure = erasure.forget(postgres_credentials(), schemas(), args.user_id, args.rewrite)
    print(f"forgot user {args.user_id}:")
    print(f"  encrypted originals shredded   {erasure.shredded}")
    print(f"  shared with other users, kept  {len(erasure.shared_kept)}")
    print(f"  raw bodies erased              {erasure.raw_bodies}")
    print(f"  unparsed bodies naming them    {erasure.unparsed_bodies}")
    print(f"  reject bodies erased           {erasure.reject_bodies}")
    print(f"  user_logins masks replaced     {erasure.masks_replaced}")
    for problem in erasure.not_vacuumed:
        print(f"  not vacuumed: {problem}, so no dead row keeps a value", file=sys.stderr)


def _settle_pending_loads() -> None:
    """Load packages a crashed loader left on this machine hold plaintext bodies: finished
    (or dropped) before an erasure, so none of them brings an erased body back."""
    from loader.ingest.load import settle_pending_packages
    from loader.settings import loader_settings, postgres_credentials, sqs_settings

    say = logs.printer("forget")
    finished = settle_pending_packages(
        loader_settings(), postgres_credentials(), sqs_settings().queue_url, say
    )
    if finished:
        say(
            f"finished {finished} load package(s) left on disk before erasing",
            event="pending_packages",
            packages=finished,
        )


def seal_missing(args: argparse.Namespace) -> None:
    from loader.privacy import vault
    from loader.settings import postgres_credentials

    looked_at, sealed = vault.seal_missing(postgres_credentials(), schemas())
    print(f"sealed {sealed} of {looked_at} values the vault lacked originals for")


def purge_raw(args: argparse.Namespace) -> None:
    from loader.privacy import erasure
    from loader.settings import postgres_credentials

    erased = erasure.purge_raw(postgres_credentials(), schemas(), args.older_than, args.rewrite)
    print(f"erased {erased} processed raw bodies older than {args.older_than}")


def rotate(args: argparse.Namespace) -> None:
    from loader.privacy import vault
    from loader.settings import postgres_credentials

    version = vault.rotate(postgres_credentials())
    print(f"HMAC key version {version} is now current; new masks carry mask_key_version {version}")


def remask(args: argparse.Namespace) -> None:
    from loader.privacy import vault
    from loader.settings import postgres_credentials

    done = vault.remask(
        postgres_credentials(), schemas(), _private_key_path(args), _passphrase(confirm=False)
    )
    print(
        f"re-masked {done.rows} rows ({done.values} values) with key version {done.key_version};"
        f" {done.rows_left} rows keep older masks (their values were erased)"
    )


def roles_apply(args: argparse.Namespace) -> None:
    from loader.privacy import roles
    from loader.settings import postgres_credentials, roles_settings

    for line in roles.apply(postgres_credentials(), roles_settings(), schemas()):
        print(line)
