"""Staging's IP check (dbt_project/macros/staging/canonical_ip.sql) against Postgres' own parser.

Staging checks IPv6 with a regex and casts to inet only what it accepts, so that it needs no
exception block and can run in parallel. That is safe only if inet reads everything the regex
accepts (else one odd address would abort a build), and right only if the canonical text is
inet's. Compared here on thousands of generated candidates, plus the classic edge cases.
"""

from __future__ import annotations

import random

from tests.conftest import REPO, connect, run_venv_tool

EDGE_CASES = [
    "::", "::1", "1::", "::ffff:1.2.3.4", "::FFFF:10.0.0.1", "2001:db8::1", "2001:DB8:0:0:0:0:0:1",
    "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8", "1:2:3:4:5:6:1.2.3.4",
    "::1.2.3.4", "1::1.2.3.4", "1:2:3:4:5::1.2.3.4", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7",
    ":::", "1:::2", "1::2::3", ":1::", "1:", ":1", "12345::", "::1.2.3", "::1.2.3.4.5",
    "::01.2.3.4", "::256.1.1.1", "1:2:3:4:5:6:7:1.2.3.4", "fe80::1", "0:0:0:0:0:0:0:0",
    "1.2.3.4:", "a:b", "::a:b:c:d:e:f:1", "1::2:3:4:5:6:7", "0000:0000::0000",
]  # fmt: skip


def _generated(count: int, seed: int = 6) -> list[str]:
    """Strings shaped like addresses, most of them nearly right."""
    rng = random.Random(seed)

    def group() -> str:
        return "".join(
            rng.choice("0123456789abcdefABCDEF") for _ in range(rng.choice([1, 1, 2, 3, 4, 4, 5]))
        )

    def ipv4() -> str:
        return ".".join(
            rng.choice(["0", "1", "9", "10", "99", "100", "199", "255", "256", "01", "300"])
            for _ in range(rng.choice([4, 4, 4, 3, 5]))
        )

    values = set()
    while len(values) < count:
        groups = [group() for _ in range(rng.randint(0, 9))]
        if rng.random() < 0.6:
            groups.insert(rng.randint(0, len(groups)), "")  # a "::"
            if not groups[0] or rng.random() < 0.1:
                groups.insert(0, "")
            if not groups[-1] or rng.random() < 0.1:
                groups.append("")
        text = ":".join(groups)
        if rng.random() < 0.3:
            text += (":" if text and not text.endswith(":") else "") + ipv4()
        if rng.random() < 0.05:
            position = rng.randint(0, len(text))
            text = text[:position] + rng.choice(":.0aF") + text[position:]
        if ":" in text:
            values.add(text)
    return sorted(values)


def _canonical_ip_sql(column: str) -> str:
    """The macro as dbt compiles it."""
    result = run_venv_tool(
        "dbt", "compile", "--quiet", "--inline", f"select {{{{ canonical_ip('{column}') }}}}",
        "--project-dir", str(REPO), "--profiles-dir", str(REPO),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    compiled = result.stdout.strip()
    assert compiled.startswith("select case"), compiled
    return compiled.removeprefix("select ")


def test_ipv6_regex_agrees_with_postgres_inet(database: str) -> None:
    candidates = EDGE_CASES + _generated(5000)
    ours = _canonical_ip_sql("candidates.value")
    conn = connect(database)
    try:
        with conn.cursor() as cursor:
            cursor.execute("create temp table candidates (value text)")
            cursor.executemany("insert into candidates values (%s)", [(c,) for c in candidates])
            cursor.execute(
                """
                create function pg_temp.inet_host(value text) returns text
                language plpgsql as $fn$
                begin
                    return regexp_replace(
                        host(value::inet), '^::ffff:([0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+)$', '\\1'
                    );
                exception when others then
                    return null;
                end
                $fn$
                """
            )
            cursor.execute(
                f"select value, {ours}, pg_temp.inet_host(value)"
                " from candidates where value ~ '^[0-9A-Fa-f:.]+$'"
            )
            rows = cursor.fetchall()
    finally:
        conn.close()

    accepted = [(value, mine) for value, mine, _ in rows if mine is not None]
    # everything the regex accepts, inet reads, and the canonical text is inet's
    assert [(v, m, h) for v, m, h in rows if m is not None and m != h] == []
    # and it accepts every address inet reads, but one form RFC text does not allow: an IPv4
    # tail of three numbers, which inet reads as if a fourth were there
    refused = [value for value, mine, host in rows if mine is None and host is not None]
    assert [value for value in refused if value.rsplit(":", 1)[1].count(".") != 2] == []
    assert "::1.2.3" in refused
    # the candidates exercise both sides
    assert len(accepted) > 500
    assert len(rows) - len(accepted) > 500
    assert {"2001:db8::1", "::1", "1.2.3.4"} <= {m for _, m in accepted}
