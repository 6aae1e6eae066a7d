"""Synthetic login messages shaped like the exercise's real ones.

Same keys in the same order, uuid4 user ids, ios/android, IPv4 addresses (some non-routable),
SSN-shaped device ids, two-letter country codes with about 29% null, app versions in the
X.Y.Z / X.YY / X.Y shapes. Devices and IPs repeat across users, so duplicates exist to be
found through their masks. A share of messages is malformed in the ways real queues are.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator

LOCALES = [
    "BG",
    "BR",
    "CA",
    "CN",
    "CU",
    "CZ",
    "DE",
    "FR",
    "GR",
    "ID",
    "IR",
    "KE",
    "KR",
    "MA",
    "MD",
    "MK",
    "MN",
    "MT",
    "MX",
    "NG",
    "NI",
    "PA",
    "PE",
    "PH",
    "PL",
    "PT",
    "RU",
    "SI",
    "TH",
    "UA",
    "US",
    "VN",
]
NULL_LOCALE_SHARE = 0.29
# Share of devices / IPs drawn from a small pool that repeats, so analysts find duplicates.
REPEAT_SHARE = 0.1


def _ipv4(rng: random.Random) -> str:
    return ".".join(str(rng.randint(0, 255)) for _ in range(4))


def _device_id(rng: random.Random) -> str:
    return f"{rng.randint(0, 999):03d}-{rng.randint(0, 99):02d}-{rng.randint(0, 9999):04d}"


def _app_version(rng: random.Random) -> str:
    shape = rng.random()
    if shape < 0.45:
        return f"{rng.randint(0, 9)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}"
    if shape < 0.82:
        return f"{rng.randint(0, 9)}.{rng.randint(0, 99):02d}"
    return f"{rng.randint(0, 9)}.{rng.randint(0, 9)}"


def valid_login(rng: random.Random, ips: list[str], devices: list[str]) -> dict[str, object]:
    return {
        "user_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "app_version": _app_version(rng),
        "device_type": rng.choice(("ios", "android")),
        "ip": rng.choice(ips) if rng.random() < REPEAT_SHARE else _ipv4(rng),
        "locale": None if rng.random() < NULL_LOCALE_SHARE else rng.choice(LOCALES),
        "device_id": rng.choice(devices) if rng.random() < REPEAT_SHARE else _device_id(rng),
    }


def malformed_body(rng: random.Random, ips: list[str], devices: list[str]) -> str:
    """One of the ways a message goes wrong; each is a reject with its own reason."""
    login = valid_login(rng, ips, devices)
    kind = rng.randrange(7)
    if kind == 0:
        return json.dumps({"foo": "oops_wrong_msg_type", "bar": str(rng.randint(0, 999))})
    if kind == 1:
        return json.dumps(login)[:-7]  # truncated: not JSON
    if kind == 2:
        del login[rng.choice(("user_id", "ip", "device_id", "app_version", "device_type"))]
    elif kind == 3:
        login["ip"] = f"{rng.randint(256, 999)}.{rng.randint(0, 255)}.0.1"
    elif kind == 4:
        login["app_version"] = f"v{rng.randint(1, 9)}.{rng.randint(0, 9)}-beta"
    elif kind == 5:
        login["device_type"] = rng.randint(0, 9)
    else:
        return json.dumps([login])  # JSON, but not an object
    return json.dumps(login)


def bodies(count: int, seed: int | None = None, malformed_share: float = 0.01) -> Iterator[str]:
    """`count` message bodies, serialized as the exercise's producer does (json.dumps)."""
    rng = random.Random(seed)
    ips = [_ipv4(rng) for _ in range(max(1, count // 50))]
    devices = [_device_id(rng) for _ in range(max(1, count // 50))]
    for _ in range(count):
        if rng.random() < malformed_share:
            yield malformed_body(rng, ips, devices)
        else:
            yield json.dumps(valid_login(rng, ips, devices))
