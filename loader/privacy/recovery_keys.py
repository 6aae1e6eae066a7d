"""The OpenPGP key pair that PII originals are encrypted to (pgcrypto's pgp_pub_encrypt).

The database holds only the public key. The private key stays in a passphrase-protected file
with whoever recovers; decryption happens here, in the recovering process, never in Postgres,
so neither the private key nor its passphrase is ever sent to the database.

OpenPGP is Sequoia's (pysequoia). Its Python API can generate and use keys but cannot
passphrase-protect a generated secret key in place, so the private key file `generate` makes
is the key (an OpenPGP transferable secret key) inside an OpenPGP message encrypted with the
passphrase (iterated and salted S2K, AES-256): any OpenPGP tool opens it, e.g.
`gpg --decrypt recovery_key.asc | gpg --import` (checked with GnuPG 2.2). Files written by
earlier releases (PGPy: a secret key protected in place) are read as they are.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pysequoia
from pysequoia.packet import Packet, PacketPile, Tag

from loader.errors import ConfigurationError, PipelineError

# pgcrypto encrypts to RSA or Elgamal keys, not elliptic-curve ones; 3072-bit RSA is ~128-bit
# security. pgcrypto refuses a key with two subkeys it could encrypt to (any RSA subkey
# qualifies, whatever its flags), so the pair is a certify-only primary + one encryption subkey.
CIPHER_SUITE = pysequoia.CipherSuite.RSA3k
USER_ID = "logins PII recovery"
MIN_PASSPHRASE_CHARS = 12


@dataclass(frozen=True)
class GeneratedPair:
    private_armored: str
    public_binary: bytes
    fingerprint: str


def generate(passphrase: str) -> GeneratedPair:
    if len(passphrase) < MIN_PASSPHRASE_CHARS:
        raise ConfigurationError(
            f"the recovery passphrase is too short: use at least {MIN_PASSPHRASE_CHARS} characters"
        )
    # validity_seconds=None: no expiry (Sequoia's default is 3 years, after which it would
    # refuse to decrypt with the key, and the vault would be unrecoverable).
    generated = pysequoia.Tsk.generate(USER_ID, cipher_suite=CIPHER_SUITE, validity_seconds=None)
    packets = _without_signing_subkeys(PacketPile.from_bytes(bytes(generated)))
    key = pysequoia.Tsk.from_packets(packets)
    sealed = pysequoia.encrypt(bytes(key), passwords=[passphrase], armor=True).decode("ascii")
    public = key.extract_certificate()
    return GeneratedPair(sealed, bytes(public), public.fingerprint.upper())


def _without_signing_subkeys(packets: PacketPile) -> list[Packet]:
    """Sequoia always adds a signing subkey; pgcrypto would see two RSA subkeys and refuse."""
    head: list[Packet] = []
    subkeys: list[list[Packet]] = []
    for packet in packets:
        if packet.tag in (Tag.SecretSubkey, Tag.PublicSubkey):
            subkeys.append([packet])
        elif subkeys:
            subkeys[-1].append(packet)
        else:
            head.append(packet)
    encrypting = [group for group in subkeys if _binds_encryption_only(group)]
    if len(encrypting) != 1:
        raise RuntimeError(f"expected one encryption subkey, the new key has {len(encrypting)}")
    return head + encrypting[0]


def _binds_encryption_only(subkey: list[Packet]) -> bool:
    flags = [packet.key_flags for packet in subkey[1:] if packet.tag == Tag.Signature]
    return any(
        f is not None
        and (f.transport_encryption or f.storage_encryption)
        and not (f.signing or f.certification or f.authentication)
        for f in flags
    )


def write_private_key(path: Path, armored: str) -> None:
    """Owner-readable only; never overwrites an existing key (that would orphan the vault)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as error:
        raise ConfigurationError(
            f"{path} already exists: move it away first (values encrypted to it need it to be "
            "recovered) or choose another --private-key file"
        ) from error
    with os.fdopen(descriptor, "w") as handle:
        handle.write(armored)


class Decryptor:
    """An unlocked private key, for as long as the `with` block lasts."""

    def __init__(self, path: Path, passphrase: str) -> None:
        try:
            self._data = Path(path).read_bytes()
            first = next(iter(PacketPile.from_bytes(self._data)), None)
        except (OSError, RuntimeError, ValueError) as error:
            raise _unreadable(path, _reason(error)) from error
        if first is None or first.tag not in (Tag.SKESK, Tag.SecretKey):
            raise _unreadable(path, "it holds no OpenPGP private key")
        # SKESK: the key inside a passphrase-encrypted message (`generate`); SecretKey: a key
        # protected in place (PGPy, before pysequoia).
        self._sealed = first.tag == Tag.SKESK
        self._path = Path(path)
        self._passphrase = passphrase
        self._decryptor: pysequoia.PyDecryptor | None = None

    def __enter__(self) -> Decryptor:
        if self._sealed:
            try:
                opened = pysequoia.decrypt(self._data, passwords=[self._passphrase]).bytes
            except (RuntimeError, ValueError) as error:
                raise _wrong_passphrase() from error
            key_bytes, password = opened or b"", None
        else:
            key_bytes, password = self._data, self._passphrase
        try:
            key = pysequoia.Tsk.from_bytes(key_bytes)
        except (RuntimeError, ValueError) as error:
            raise _unreadable(self._path, _reason(error)) from error
        try:
            self._decryptor = key.decryptor(password)
        except RuntimeError as error:
            if "No suitable decryption subkey" in str(error):
                raise _unreadable(self._path, "the key has no encryption subkey") from error
            raise _wrong_passphrase() from error
        return self

    def __exit__(self, *exc: object) -> None:
        self._decryptor = None

    def decrypt(self, ciphertext: bytes) -> str:
        """A message encrypted to the recovery key (a data key, in the vault's envelope)."""
        if self._decryptor is None:
            raise RuntimeError("Decryptor.decrypt() is only usable inside its `with` block")
        try:
            plaintext = pysequoia.decrypt(ciphertext, decryptor=self._decryptor).bytes
        except (RuntimeError, ValueError) as error:
            raise PipelineError(
                "this private key cannot decrypt the vault's values (they were encrypted to "
                "another recovery key): use the private key whose public key is installed"
            ) from error
        return (plaintext or b"").decode()


def decrypt_with_data_key(data_key: str, ciphertext: bytes) -> str:
    """A value the vault encrypted with a data key (pgcrypto pgp_sym_encrypt)."""
    try:
        plaintext = pysequoia.decrypt(ciphertext, passwords=[data_key]).bytes
    except (RuntimeError, ValueError) as error:
        raise PipelineError(
            f"a vault value does not decrypt with its data key ({_reason(error)}): the vault "
            "row is damaged or was changed outside pii.seal_new()"
        ) from error
    return (plaintext or b"").decode()


def _reason(error: Exception) -> str:
    """Sequoia's message without the Rust backtrace RUST_BACKTRACE=1 appends to it."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _unreadable(path: Path, reason: str) -> ConfigurationError:
    return ConfigurationError(
        f"cannot read the recovery private key {path}: {reason}; pass the file "
        "`logins pii keygen` wrote"
    )


def _wrong_passphrase() -> ConfigurationError:
    return ConfigurationError(
        "wrong passphrase for the recovery private key: set PII__RECOVERY_PASSPHRASE "
        "(or type it at the prompt) to the one chosen at `logins pii keygen`"
    )
