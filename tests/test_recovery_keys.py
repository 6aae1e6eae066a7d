"""The recovery key pair (loader/recovery_keys.py) against the real pgcrypto that seals the vault.

pgcrypto runs in a scratch database; ciphertexts are made by Postgres exactly as
pii.seal_new() makes them, and decrypted here, in Python, as `logins pii recover` does.
"""

from __future__ import annotations

import json
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pysequoia
import pytest
from pysequoia.packet import PacketPile, Tag

from loader.errors import ConfigurationError, PipelineError
from loader.privacy.recovery_keys import (
    Decryptor,
    GeneratedPair,
    decrypt_with_data_key,
    generate,
    write_private_key,
)
from tests.conftest import connect

PASSPHRASE = "recovery-keys test passphrase"
FIXTURES = Path(__file__).parent / "fixtures"
# Made with PGPy before the switch to pysequoia: see tests/fixtures/README.md.
OLD_KEY = FIXTURES / "pgpy_recovery_key.asc"
OLD = json.loads((FIXTURES / "pgpy_recovery_key.json").read_text())
VALUES = ["203.0.113.7", "2001:db8::1", "device-3f2a-ü-✓", ""]


@pytest.fixture(scope="module")
def pgcrypto() -> Iterator[Any]:
    """A cursor in a scratch database with pgcrypto, dropped afterwards."""
    name = f"logins_test_keys_{uuid.uuid4().hex[:12]}"
    admin = connect("postgres")
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'create database "{name}"')
        conn = connect(name)
        try:
            with conn.cursor() as cursor:
                cursor.execute("create extension if not exists pgcrypto")
                yield cursor
        finally:
            conn.close()
            with admin.cursor() as cursor:
                cursor.execute(f'drop database if exists "{name}" with (force)')
    finally:
        admin.close()


@pytest.fixture(scope="module")
def pair() -> GeneratedPair:
    return generate(PASSPHRASE)


@pytest.fixture
def private_key(pair: GeneratedPair, tmp_path: Path) -> Path:
    path = tmp_path / "secrets" / "recovery.asc"
    write_private_key(path, pair.private_armored)
    return path


def seal(cursor: Any, public_key: bytes, values: list[str]) -> tuple[str, bytes, list[bytes]]:
    """What pii.seal_new() stores: a wrapped random data key, and each value under it."""
    cursor.execute("select encode(gen_random_bytes(32), 'hex')")
    (data_key,) = cursor.fetchone()
    cursor.execute("select pgp_pub_encrypt(%s, %s, 'cipher-algo=aes256')", (data_key, public_key))
    wrapped = bytes(cursor.fetchone()[0])
    ciphertexts = []
    for value in values:
        cursor.execute(
            "select pgp_sym_encrypt(%s, %s, 'cipher-algo=aes256, s2k-mode=1')", (value, data_key)
        )
        ciphertexts.append(bytes(cursor.fetchone()[0]))
    return data_key, wrapped, ciphertexts


def recover(key: Path, passphrase: str, wrapped: bytes, ciphertexts: list[bytes]) -> list[str]:
    """As pii.recover_masks() does it."""
    with Decryptor(key, passphrase) as decryptor:
        data_key = decryptor.decrypt(wrapped)
        return [decrypt_with_data_key(data_key, ciphertext) for ciphertext in ciphertexts]


def test_a_new_key_round_trips_through_pgcrypto(
    pgcrypto: Any, pair: GeneratedPair, private_key: Path
) -> None:
    data_key, wrapped, ciphertexts = seal(pgcrypto, pair.public_binary, VALUES)
    assert recover(private_key, PASSPHRASE, wrapped, ciphertexts) == VALUES
    with Decryptor(private_key, PASSPHRASE) as decryptor:
        assert decryptor.decrypt(wrapped) == data_key

    # what pgcrypto can encrypt to: a certify-only RSA primary and exactly one RSA subkey, for
    # encryption; the message is to that subkey
    public = pysequoia.Cert.from_bytes(pair.public_binary)
    packets = list(PacketPile.from_bytes(pair.public_binary))
    subkeys = [p for p in packets if p.tag == Tag.PublicSubkey]
    assert len(subkeys) == 1
    keys = [p for p in packets if p.tag in (Tag.PublicKey, Tag.PublicSubkey)]
    rsa = pysequoia.packet.PublicKeyAlgorithm.RSAEncryptSign
    assert [p.key_algorithm == rsa for p in keys] == [True, True]
    pgcrypto.execute("select pgp_key_id(%s), pgp_key_id(%s)", (pair.public_binary, wrapped))
    assert pgcrypto.fetchone() == (subkeys[0].key_id.upper(),) * 2
    assert pair.fingerprint == public.fingerprint.upper()
    assert len(pair.fingerprint) == 40
    assert public.expiration is None  # an expired key would no longer decrypt

    # the private key file: an OpenPGP message with the key inside, not the key in the clear
    assert pair.private_armored.startswith("-----BEGIN PGP MESSAGE-----")
    with pytest.raises(RuntimeError):
        pysequoia.Tsk.from_bytes(pair.private_armored.encode())
    inside = pysequoia.decrypt(pair.private_armored.encode(), passwords=[PASSPHRASE]).bytes
    assert pysequoia.Tsk.from_bytes(inside).extract_certificate().fingerprint == public.fingerprint


def test_a_pgpy_key_and_its_vault_still_recover(pgcrypto: Any) -> None:
    # ciphertexts Postgres made for it before the switch
    stored = [bytes.fromhex(v["ciphertext"]) for v in OLD["values"]]
    wrapped = bytes.fromhex(OLD["wrapped_data_key"])
    plaintexts = [v["plaintext"] for v in OLD["values"]]
    assert recover(OLD_KEY, OLD["passphrase"], wrapped, stored) == plaintexts
    with Decryptor(OLD_KEY, OLD["passphrase"]) as decryptor:
        assert decryptor.decrypt(wrapped) == OLD["data_key"]

    # and new ones, sealed now to its installed public key
    public_key = bytes.fromhex(OLD["public_key"])
    _, wrapped, ciphertexts = seal(pgcrypto, public_key, VALUES)
    assert recover(OLD_KEY, OLD["passphrase"], wrapped, ciphertexts) == VALUES
    assert pysequoia.Cert.from_bytes(public_key).fingerprint.upper() == OLD["fingerprint"]


@pytest.mark.parametrize("which", ["new", "pgpy"])
def test_a_wrong_passphrase_is_one_line_configuration_error(which: str, private_key: Path) -> None:
    key = private_key if which == "new" else OLD_KEY
    with pytest.raises(ConfigurationError) as raised, Decryptor(key, "not the passphrase!"):
        pass
    message = str(raised.value)
    assert message.startswith("wrong passphrase for the recovery private key")
    assert "\n" not in message


def test_another_key_cannot_decrypt_and_a_missing_file_is_named(
    pgcrypto: Any, private_key: Path, tmp_path: Path
) -> None:
    _, wrapped, ciphertexts = seal(pgcrypto, bytes.fromhex(OLD["public_key"]), VALUES[:1])
    with (
        Decryptor(private_key, PASSPHRASE) as decryptor,
        pytest.raises(PipelineError, match="cannot decrypt the vault's values") as raised,
    ):
        decryptor.decrypt(wrapped)
    assert "\n" not in str(raised.value)

    with pytest.raises(PipelineError, match="does not decrypt with its data key") as raised:
        decrypt_with_data_key("0" * 64, ciphertexts[0])
    assert "\n" not in str(raised.value)

    missing = tmp_path / "none.asc"
    with pytest.raises(ConfigurationError, match="cannot read the recovery private key"):
        Decryptor(missing, PASSPHRASE)
    not_a_key = tmp_path / "public.pgp"
    not_a_key.write_bytes(bytes.fromhex(OLD["public_key"]))
    with pytest.raises(ConfigurationError, match="holds no OpenPGP private key"):
        Decryptor(not_a_key, PASSPHRASE)
    garbage = tmp_path / "garbage.asc"
    garbage.write_text("not OpenPGP at all\n")
    with pytest.raises(ConfigurationError, match="cannot read the recovery private key") as raised:
        Decryptor(garbage, PASSPHRASE)
    assert "\n" not in str(raised.value)


def test_the_private_key_file_is_owner_only_and_never_overwritten(
    pair: GeneratedPair, private_key: Path
) -> None:
    assert stat.S_IMODE(private_key.stat().st_mode) == 0o600
    with pytest.raises(ConfigurationError, match="already exists"):
        write_private_key(private_key, pair.private_armored)
    assert private_key.read_text() == pair.private_armored


def test_a_short_passphrase_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="too short"):
        generate("short")
