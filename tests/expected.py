"""What user_logins should hold, computed here independently of the SQL."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import re

from tests.conftest import TEST_HMAC_KEY

_VERSION = re.compile(r"^(\d{1,4})\.(\d{1,2})(?:\.(\d{1,2}))?$")


def mask(kind: str, value: str, key_hex: str = TEST_HMAC_KEY) -> str:
    return hmac.new(bytes.fromhex(key_hex), f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


def canonical_ip(value: str) -> str:
    address = ipaddress.ip_address(value)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return str(address.ipv4_mapped)
    return str(address)


def version_code(version: str) -> int:
    match = _VERSION.match(version)
    assert match, version
    major, minor, patch = match.groups()
    return int(major) * 10000 + int(minor) * 100 + int(patch or 0)


def expected_row(record: dict[str, str]) -> tuple[object, ...]:
    """(user_id, device_type, masked_ip, masked_device_id, locale, app_version, string)."""
    return (
        record["user_id"],
        record["device_type"],
        mask("ip", canonical_ip(record["ip"])),
        mask("device_id", record["device_id"]),
        record["locale"],
        version_code(record["app_version"]),
        record["app_version"],
    )


def valid_records(lines: list[str]) -> list[dict[str, str]]:
    records = [json.loads(line) for line in lines]
    return [r for r in records if "user_id" in r]


USER_LOGINS_COLUMNS = (
    "user_id, device_type, masked_ip, masked_device_id, locale, app_version, app_version_string"
)
