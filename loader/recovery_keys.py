"""The OpenPGP key pair that PII originals are encrypted to (pgcrypto's pgp_pub_encrypt).

The database holds only the public key. The private key stays in a passphrase-protected file
with whoever recovers; decryption happens here, in the recovering process, never in Postgres,
so neither the private key nor its passphrase is ever sent to the database.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

with warnings.catch_warnings():
    # PGPy 0.6 calls cryptography APIs that now warn about deprecated ciphers it never uses here.
    warnings.simplefilter("ignore")
    import pgpy
    from pgpy.constants import (
        CompressionAlgorithm,
        HashAlgorithm,
        KeyFlags,
        PubKeyAlgorithm,
        SymmetricKeyAlgorithm,
    )
    from pgpy.errors import PGPDecryptionError, PGPError
    from pgpy.packet.fields import RSAPriv

from loader.errors import ConfigurationError, PipelineError

# pgcrypto encrypts to RSA or Elgamal keys, not elliptic-curve ones; 3072-bit RSA is ~128-bit
# security. pgcrypto uses the encryption subkey, so the pair is a certify-only primary + subkey.
RSA_BITS = 3072
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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        primary = pgpy.PGPKey.new(PubKeyAlgorithm.RSAEncryptOrSign, RSA_BITS)
        primary.add_uid(
            pgpy.PGPUID.new("logins PII recovery"),
            usage={KeyFlags.Certify},
            hashes=[HashAlgorithm.SHA256],
            ciphers=[SymmetricKeyAlgorithm.AES256],
            compression=[CompressionAlgorithm.Uncompressed],
        )
        subkey = pgpy.PGPKey.new(PubKeyAlgorithm.RSAEncryptOrSign, RSA_BITS)
        primary.add_subkey(subkey, usage={KeyFlags.EncryptCommunications, KeyFlags.EncryptStorage})
        primary.protect(passphrase, SymmetricKeyAlgorithm.AES256, HashAlgorithm.SHA256)
    return GeneratedPair(str(primary), bytes(primary.pubkey), str(primary.fingerprint))


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


# PGPy rebuilds the RSA key object for every message it decrypts, and cryptography validates
# the key each time: ~0.5 s a value for a 3072-bit key. While a Decryptor is open, each key is
# built once (0.5 ms a value after that); the cache is emptied when it closes.
_built_private_keys: dict[int, object] = {}
_build_private_key = RSAPriv.__privkey__


def _memoized_private_key(self: RSAPriv) -> object:
    built = _built_private_keys.get(id(self))
    if built is None:
        built = _built_private_keys[id(self)] = _build_private_key(self)
    return built


RSAPriv.__privkey__ = _memoized_private_key


class Decryptor:
    """An unlocked private key, for as long as the `with` block lasts."""

    def __init__(self, path: Path, passphrase: str) -> None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._key, _ = pgpy.PGPKey.from_file(str(path))
        except (OSError, ValueError, PGPError) as error:
            raise ConfigurationError(
                f"cannot read the recovery private key {path}: {error}; pass the file "
                "`logins pii keygen` wrote"
            ) from error
        self._passphrase = passphrase
        self._unlocked = None

    def __enter__(self) -> Decryptor:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._unlocked = self._key.unlock(self._passphrase)
                self._unlocked.__enter__()
        except PGPDecryptionError as error:
            raise PipelineError(
                "wrong passphrase for the recovery private key: set PII__RECOVERY_PASSPHRASE "
                "(or type it at the prompt) to the one chosen at `logins pii keygen`"
            ) from error
        return self

    def __exit__(self, *exc: object) -> None:
        _built_private_keys.clear()
        if self._unlocked is not None:
            self._unlocked.__exit__(*exc)

    def decrypt(self, ciphertext: bytes) -> str:
        """A message encrypted to the recovery key (a data key, in the vault's envelope)."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                message = self._key.decrypt(pgpy.PGPMessage.from_blob(ciphertext))
        except (PGPError, ValueError) as error:
            raise PipelineError(
                "this private key cannot decrypt the vault's values (they were encrypted to "
                "another recovery key): use the private key whose public key is installed"
            ) from error
        return _text(message.message)


def decrypt_with_data_key(data_key: str, ciphertext: bytes) -> str:
    """A value the vault encrypted with a data key (pgcrypto pgp_sym_encrypt)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _text(pgpy.PGPMessage.from_blob(ciphertext).decrypt(data_key).message)


def _text(value: str | bytes | bytearray) -> str:
    return value.decode() if isinstance(value, bytes | bytearray) else str(value)
