"""The HMAC key behind the masks: from configuration, or generated once for the demo."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from loader.errors import ConfigurationError
from loader.paths import project_root

if TYPE_CHECKING:
    from loader.settings import PiiSettings

MIN_KEY_BYTES = 32


def configured_key(settings: PiiSettings) -> bytes | None:
    """PII__HMAC_KEY if set, else the key file if it exists."""
    if settings.hmac_key:
        return _decode(str(settings.hmac_key), "PII__HMAC_KEY")
    path = key_file(settings)
    if path.exists():
        return _decode(path.read_text().strip(), str(path))
    return None


def generate_key_file(settings: PiiSettings) -> Path:
    """Write a new random key to the (git-ignored) key file, readable by the owner only."""
    path = key_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secrets.token_hex(MIN_KEY_BYTES) + "\n")
    return path


def key_file(settings: PiiSettings) -> Path:
    return project_path(settings.hmac_key_file)


def project_path(text: str) -> Path:
    """A configured path: absolute as given, relative to the checkout otherwise."""
    path = Path(text)
    return path if path.is_absolute() else project_root() / path


def _decode(text: str, where: str) -> bytes:
    """Hex is read as bytes; anything else as UTF-8 text. Either way at least 32 bytes."""
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = text.encode()
    if len(key) < MIN_KEY_BYTES:
        raise ConfigurationError(
            f"the HMAC key in {where} is too short: use at least {MIN_KEY_BYTES} random bytes "
            "(e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`)"
        )
    return key
