"""`logins pii ...` and `logins roles apply`: the arguments, wired to `pii_commands`."""

from __future__ import annotations

import argparse

from loader.cli import pii_commands


def add_commands(commands: argparse._SubParsersAction) -> None:
    pii = commands.add_parser("pii", help="PII recovery, erasure, retention and key rotation")
    subcommands = pii.add_subparsers(dest="pii_command", required=True, metavar="COMMAND")
    key_help = "the recovery private key file (PII__RECOVERY_KEY_FILE, .secrets/recovery_key.asc)"

    keygen = subcommands.add_parser(
        "keygen", help="create a recovery key pair and install its public key"
    )
    keygen.add_argument("--private-key", help=key_help)
    keygen.add_argument(
        "--demo",
        action="store_true",
        help="unless a recovery key is installed, make one with the public demo passphrase "
        "(make demo; never in production)",
    )
    keygen.set_defaults(handler=pii_commands.keygen)

    recover = subcommands.add_parser(
        "recover", help="print the original values behind masks (audited)"
    )
    asked = recover.add_mutually_exclusive_group(required=True)
    asked.add_argument("--masked-ip", help="a masked_ip from user_logins")
    asked.add_argument("--masked-device-id", help="a masked_device_id from user_logins")
    asked.add_argument("--user-id", help="every value behind one user's masks")
    recover.add_argument("--private-key", help=key_help)
    recover.set_defaults(handler=pii_commands.recover)

    forget = subcommands.add_parser(
        "forget", help="erase a user's IP and device id (crypto-shredding, plaintext bodies)"
    )
    forget.add_argument("--user-id", required=True)
    _add_rewrite(forget)
    forget.set_defaults(handler=pii_commands.forget)

    seal = subcommands.add_parser(
        "seal-missing",
        help="seal the originals of rows masked before a recovery key was installed, from "
        "staging, while raw still holds them",
    )
    seal.set_defaults(handler=pii_commands.seal_missing)

    purge = subcommands.add_parser(
        "purge-raw", help="erase processed raw bodies older than an interval"
    )
    purge.add_argument("--older-than", required=True, help="a Postgres interval, e.g. '7 days'")
    _add_rewrite(purge)
    purge.set_defaults(handler=pii_commands.purge_raw)

    rotate = subcommands.add_parser("rotate", help="start a new HMAC key version")
    rotate.set_defaults(handler=pii_commands.rotate)

    remask = subcommands.add_parser(
        "remask", help="re-mask rows of older key versions with the current key (audited)"
    )
    remask.add_argument("--private-key", help=key_help)
    remask.set_defaults(handler=pii_commands.remask)

    roles = commands.add_parser("roles", help="database roles with least privilege")
    roles_commands = roles.add_subparsers(dest="roles_command", required=True, metavar="COMMAND")
    apply = roles_commands.add_parser(
        "apply",
        help="create or update loader, transformer, analyst, pii_admin, operator (idempotent)",
    )
    apply.set_defaults(handler=pii_commands.roles_apply)


def _add_rewrite(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--rewrite",
        action="store_true",
        help="rewrite the erased tables (VACUUM FULL) so no erased byte stays in free space; "
        "locks each table exclusively while it is rewritten",
    )
