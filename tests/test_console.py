"""The web console in a real browser (Debian's chromium, driven by Playwright), against a
database loaded with the 100 real messages through the real pipeline: each role's pages, the
privacy desk's recovery in the browser and erasure, and the attacks it must refuse.

One loaded database, one server and one browser for the whole module."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from playwright.sync_api import Browser, Page, expect, sync_playwright

from loader.console.app import create_app
from loader.console.config import ConsoleConfig
from loader.console.security import COOKIE
from loader.devstack.ports import free_port, wait_until_answers
from loader.names import Schemas
from tests.conftest import (
    PG,
    REPO,
    SAMPLE,
    Pipeline,
    Queue,
    connect,
    drop_roles,
    pipeline_env,
    roles_prefix_for,
    sqs_client,
)
from tests.expected import canonical_ip, mask, valid_records
from tests.test_pii import PASSPHRASE, _holding

ARTIFACTS = REPO / "test-artifacts" / "console"
CHROMIUM = "/usr/bin/chromium"
SECRET = "a test secret for the console's cookies"
ROLE_PASSWORD = "console test password 5"
# a reject whose body would run script if the page did not escape it
INJECTED = '<script>window.pwned = 1</script><img src=x id=pwned onerror="window.pwned = 2">'

PAGES = ["/", "/duplicates", "/rejects", "/privacy", "/docs/"]
SEES = {
    "analyst": {"/", "/duplicates", "/docs/"},
    "operator": {"/", "/duplicates", "/rejects", "/docs/"},
    "pii_admin": {"/", "/rejects", "/privacy", "/docs/"},
}


@dataclass
class Recorder:
    """What reached the server: each request's path and body, and the access log's lines."""

    bodies: list[bytes] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    access_log: list[str] = field(default_factory=list)

    def wrap(self, app: Any) -> Any:
        async def recording(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            self.paths.append(scope["path"] + "?" + scope.get("query_string", b"").decode())

            async def recorded() -> Any:
                message = await receive()
                if message["type"] == "http.request":
                    self.bodies.append(message.get("body", b""))
                return message

            await app(scope, recorded, send)

        return recording

    def everything(self) -> str:
        return "\n".join(
            [*self.paths, *self.access_log, *(b.decode("utf-8", "replace") for b in self.bodies)]
        )


class ListHandler(logging.Handler):
    def __init__(self, lines: list[str]) -> None:
        super().__init__()
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@dataclass
class Console:
    url: str
    pipeline: Pipeline
    prefix: str
    key: Path
    app: Any
    recorder: Recorder
    browser: Browser

    def role(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def signed_in(self, role: str) -> Page:
        page = self.browser.new_context(base_url=self.url).new_page()
        page.goto("/signin")
        page.fill("input[name=user]", self.role(role))
        page.fill("input[name=password]", ROLE_PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_load_state()
        assert "/signin" not in page.url, page.content()
        return page


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def build_pipeline(pipeline: Pipeline, prefix: str, key: Path) -> None:
    pipeline.logins("db", "init")
    pipeline.logins("roles", "apply")
    pipeline.pii_with_key("keygen", key, passphrase=PASSPHRASE)
    pipeline.queue.send([*SAMPLE.read_text().splitlines(), INJECTED])
    pipeline.logins("run")
    pipeline.logins("roles", "apply")  # grants on the tables the first build made
    pipeline.logins("docs")
    admin = connect(pipeline.database)
    with admin.cursor() as cursor:
        for role in ("analyst", "operator", "pii_admin"):
            cursor.execute(f'alter role "{prefix}{role}" login password %s', (ROLE_PASSWORD,))
    admin.close()


@pytest.fixture(scope="module")
def console(sqs_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    database = f"logins_test_{uuid.uuid4().hex[:12]}"
    prefix = roles_prefix_for(database)
    admin = connect("postgres")
    with admin.cursor() as cursor:
        cursor.execute(f'create database "{database}"')
    client = sqs_client(sqs_endpoint)
    queue_url = client.create_queue(QueueName=f"login-queue-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    workdir = tmp_path_factory.mktemp("console")
    env = {**pipeline_env(database, queue_url, workdir), "CONSOLE__DOCS_DIR": str(workdir / "docs")}
    pipeline = Pipeline(env, database, Queue(queue_url, client), workdir)
    key = workdir / "recovery.asc"
    server = None
    try:
        build_pipeline(pipeline, prefix, key)
        config = ConsoleConfig(
            host=PG["host"],
            port=PG["port"],
            database=database,
            schemas=Schemas(owner_role=f"{prefix}owner"),
            analyst_role=f"{prefix}analyst",
            idle_seconds=900,
            docs_dir=workdir / "docs",
        )
        app = create_app(config, secret=SECRET)
        recorder = Recorder()
        access = logging.getLogger("uvicorn.access")
        access.setLevel(logging.INFO)
        access.addHandler(ListHandler(recorder.access_log))
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(recorder.wrap(app), host="127.0.0.1", port=port, log_config=None)
        )
        threading.Thread(target=server.run, daemon=True).start()
        wait_until_answers("127.0.0.1", port, 30)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM)
            yield Console(f"http://127.0.0.1:{port}", pipeline, prefix, key, app, recorder, browser)
            browser.close()
    finally:
        if server is not None:
            server.should_exit = True
        client.delete_queue(QueueUrl=queue_url)
        drop_roles(database, prefix)
        with admin.cursor() as cursor:
            cursor.execute(f'drop database if exists "{database}" with (force)')
        admin.close()


@pytest.mark.parametrize("role", sorted(SEES))
def test_each_role_sees_exactly_its_pages(console: Console, role: str) -> None:
    page = console.signed_in(role)
    menu = {link.get_attribute("href") for link in page.locator("header nav a").all()}
    assert menu == SEES[role]
    for path in PAGES:
        response = page.goto(path)
        assert response is not None
        if path in SEES[role]:
            assert response.status == 200, (role, path)
            name = path.strip("/").replace("/", "-") or "overview"
            shot(page, f"{role}-{name}")
        else:
            assert response.status == 403, (role, path)
            expect(page.locator("#error-message")).to_have_text("Your role may not open this page.")
            assert "Traceback" not in page.content()
    page.context.close()


def test_overview_shows_the_real_messages(console: Console) -> None:
    records = valid_records(SAMPLE.read_text().splitlines())
    page = console.signed_in("operator")
    page.goto("/")
    # each chart drawn (Chart.js ran: the CSP let the static script in) with its table
    for chart in ("chart-logins", "chart-versions", "chart-locales", "chart-rejects"):
        assert page.locator(f"#{chart}").evaluate("c => Chart.getChart(c) !== undefined"), chart
    counts = page.locator("#logins td.num").all_text_contents()
    assert sum(int(n) for n in counts) == len(records)
    versions = page.locator("#versions tbody tr td:nth-child(2)").all_text_contents()
    assert [int(v) for v in versions] == sorted(int(v) for v in versions)
    nulls = sum(1 for r in records if r["locale"] is None)
    null_row = page.locator("#locales td.null")
    expect(null_row).to_have_text("(null)")
    assert int(null_row.locator("xpath=../td[2]").text_content() or "") == nulls
    expect(page.locator("#runs tbody tr")).to_have_count(1)
    expect(page.locator("#freshness")).to_contain_text("Newest load")
    if os.environ.get("CONSOLE_README_SCREENSHOT"):
        page.set_viewport_size({"width": 1280, "height": 900})
        page.screenshot(path=str(REPO / "docs" / "images" / "console-overview.png"))
    page.context.close()


def test_recovery_decrypts_in_the_browser_and_the_key_never_leaves_it(
    console: Console,
) -> None:
    records = valid_records(SAMPLE.read_text().splitlines())
    ips = sorted({canonical_ip(r["ip"]) for r in records})[:3]
    page = console.signed_in("pii_admin")
    page.goto("/privacy")
    sent: list[str] = []
    page.on("request", lambda request: sent.append(f"{request.url}\n{request.post_data or ''}"))
    key_text = console.key.read_text()

    # a wrong passphrase is the browser's own message: nothing is asked of the server
    page.set_input_files("#recover-key", str(console.key))
    page.select_option("#recover-what", "ip")
    page.fill("#recover-value", mask("ip", ips[0]))
    page.fill("#recover-reason", "test: a wrong passphrase")
    page.fill("#recover-passphrase", "not the passphrase at all")
    page.click("#recover-button")
    expect(page.locator("#recover-message")).to_contain_text("Wrong passphrase")
    assert not [r for r in sent if "/privacy/recover" in r]

    # an empty reason is refused before anything is fetched
    page.fill("#recover-passphrase", PASSPHRASE)
    page.fill("#recover-reason", "")
    page.click("#recover-button")
    expect(page.locator("#recover-message")).to_contain_text("Give a reason")

    for ip in ips:
        page.fill("#recover-value", mask("ip", ip))
        page.fill("#recover-reason", f"test: recover {ip[:3]}")
        page.click("#recover-button")
        expect(page.locator("#recover-message")).to_have_text("Recovered 1 value(s).")
        expect(page.locator("#recover-results tbody td:nth-child(3)")).to_have_text(ip)
    shot(page, "pii_admin-privacy-recovered")

    # an unknown mask: the server's clear message
    page.fill("#recover-value", "0" * 64)
    page.click("#recover-button")
    expect(page.locator("#recover-message")).to_contain_text("unknown mask")

    reached = console.recorder.everything() + "\n".join(sent)
    assert PASSPHRASE not in reached
    for line in key_text.splitlines():
        if len(line) > 20:  # the armor's base64 lines
            assert line not in reached
    for ip in ips:  # the plaintext never travelled either: only ciphertexts did
        assert ip not in reached
    audit = console.pipeline.query(
        "select actor, request, value_count from pii.audit_log where action = 'recover'"
    )
    for ip in ips:
        assert (
            console.role("pii_admin"),
            f"ip={mask('ip', ip)}; reason: test: recover {ip[:3]}",
            1,
        ) in audit
    page.context.close()


def test_lookup_and_erase_in_the_browser(console: Console) -> None:
    records = valid_records(SAMPLE.read_text().splitlines())
    seen: dict[str, int] = {}
    for r in records:
        for value in (r["user_id"], canonical_ip(r["ip"]), r["device_id"]):
            seen[value] = seen.get(value, 0) + 1
    # a user with one login whose IP and device id nobody else has: all of it is theirs
    gone = next(
        r
        for r in reversed(records)
        if seen[r["user_id"]] == seen[canonical_ip(r["ip"])] == seen[r["device_id"]] == 1
    )
    gone_ip = canonical_ip(gone["ip"])
    assert _holding(console.pipeline, gone["device_id"])
    page = console.signed_in("pii_admin")
    page.goto("/privacy")

    for asked, message in (
        ("short", "is not a user id"),
        ("f" * 64, "unknown mask"),
        ("00000000-0000-4000-8000-000000000000", "unknown user id"),
    ):
        page.fill("#lookup-q", asked)
        page.click("#lookup button")
        expect(page.locator("#lookup-message")).to_contain_text(message)
    page.fill("#lookup-q", gone["user_id"])
    page.click("#lookup button")
    expect(page.locator("#lookup table.rows tbody tr")).to_have_count(1)

    page.fill("#erase-user", gone["user_id"])
    page.fill("#erase-confirmation", gone["user_id"] + "x")
    page.click("#erase-form button")
    expect(page.locator("#erase-message")).to_contain_text("confirmation differs")
    page.fill("#erase-user", gone["user_id"])
    page.fill("#erase-confirmation", gone["user_id"])
    page.click("#erase-form button")
    expect(page.locator("#erased")).to_contain_text("Encrypted originals shredded")
    shot(page, "pii_admin-privacy-erased")
    assert page.locator("#erased tr:nth-child(1) td").inner_text() == "2"  # shredded
    assert page.locator("#erased tr:nth-child(6) td").inner_text() == "0"  # kept
    expect(page.locator("#audit tbody tr").first).to_contain_text("forget")

    # as the PII tests check `logins pii forget`: no plaintext left anywhere, no vault row,
    # the row kept with random masks
    assert _holding(console.pipeline, gone_ip) == []
    assert _holding(console.pipeline, gone["device_id"]) == []
    gone_masks = [mask("ip", gone_ip), mask("device_id", gone["device_id"])]
    [(masked_ip, masked_device_id)] = console.pipeline.query(
        "select masked_ip, masked_device_id from public.user_logins where user_id = %s",
        (gone["user_id"],),
    )
    assert {masked_ip, masked_device_id}.isdisjoint(gone_masks)
    assert console.pipeline.query(
        "select count(*) from pii.vault where mask = any(%s)", (gone_masks,)
    ) == [(0,)]
    page.context.close()


def test_a_post_without_the_csrf_token_is_refused(console: Console) -> None:
    records = valid_records(SAMPLE.read_text().splitlines())
    victim = records[0]["user_id"]
    page = console.signed_in("pii_admin")
    for path, form in (
        ("/privacy/erase", {"user_id": victim, "confirmation": victim}),
        ("/privacy/lookup", {"q": victim}),
        ("/signout", {}),
    ):
        refused = page.request.post(path, form=form)
        assert refused.status == 403, path
        assert "no valid CSRF token" in refused.text()
        wrong = page.request.post(path, form={**form, "csrf_token": "not the token"})
        assert wrong.status == 403, path
    recover = page.request.post(
        "/privacy/recover",
        data=json.dumps({"what": "user_id", "value": victim, "reason": "test"}),
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    assert recover.status == 403
    # nothing was erased or recovered, and the session still works
    assert console.pipeline.query(
        "select count(*) from pii.audit_log where request like %s", (f"%{victim}%",)
    ) == [(0,)]
    assert page.goto("/privacy").status == 200
    page.context.close()


def test_a_forged_or_expired_cookie_is_refused(console: Console) -> None:
    page = console.signed_in("analyst")
    context = page.context
    [cookie] = [c for c in context.cookies() if c["name"] == COOKIE]
    data = URLSafeTimedSerializer(SECRET, salt="logins-console").loads(cookie["value"])

    def with_cookie(value: str) -> int:
        context.clear_cookies()
        context.add_cookies([{**cookie, "value": value}])
        response = page.goto("/duplicates")
        assert response is not None
        return response.status

    # the right session id and token, signed with another secret (forged), or an old signature
    forged = URLSafeTimedSerializer("another secret", salt="logins-console").dumps(data)

    class Old(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 13 * 3600

    expired = URLSafeTimedSerializer(SECRET, salt="logins-console", signer=Old).dumps(data)
    tampered = cookie["value"][:-2] + ("AA" if not cookie["value"].endswith("AA") else "BB")
    for value in (forged, expired, tampered):
        assert with_cookie(value) == 200  # the sign-in page, after a redirect
        assert page.url.endswith("/signin?expired=1"), value
        expect(page.locator("#signin-message")).to_contain_text("expired")
    assert with_cookie(cookie["value"]) == 200
    assert page.url.endswith("/duplicates")

    # a session idle past the timeout is closed, and says so
    store = console.app.state.console.store
    store.idle_seconds = 0
    try:
        time.sleep(0.01)
        page.goto("/duplicates")
    finally:
        store.idle_seconds = 900
    assert page.url.endswith("/signin?expired=1")
    shot(page, "signin-expired")
    page.goto("/duplicates")
    assert page.url.endswith("/signin?expired=1")  # closed for good: sign in again
    context.close()


def test_a_script_in_a_reject_body_does_not_run(console: Console) -> None:
    page = console.signed_in("pii_admin")
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text))
    page.goto("/rejects")
    body = page.locator("#bodies code.body", has_text="window.pwned")
    expect(body).to_have_count(1)
    expect(body).to_have_text(INJECTED)  # shown as text, escaped
    assert page.evaluate("typeof window.pwned") == "undefined"
    assert page.locator("#pwned").count() == 0
    assert "&lt;script&gt;window.pwned" in page.content()
    # the CSP holds too: a script injected into the page anyway is refused
    page.evaluate(
        "() => { const s = document.createElement('script');"
        " s.textContent = 'window.pwned = 3'; document.body.append(s); }"
    )
    assert page.evaluate("typeof window.pwned") == "undefined"
    assert any("Content Security Policy" in text for text in violations)
    page.context.close()


def test_the_console_pages_break_no_csp_rule_and_send_the_headers(console: Console) -> None:
    page = console.signed_in("pii_admin")
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(str(error)))
    for path in ("/", "/rejects", "/privacy", "/docs/"):
        response = page.goto(path)
        assert response is not None
        page.wait_for_load_state("networkidle")
        headers = response.headers
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["cache-control"] == "no-store"
        csp = headers["content-security-policy"]
        assert "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
        assert "'unsafe-eval'" not in csp
        if path != "/docs/":
            assert "script-src 'self';" in csp
    # the docs site drew its model list (its inline scripts ran under their hashes), a model's
    # page with its columns, and the lineage graph
    expect(page.locator("body")).to_contain_text("user_logins")
    page.goto("/docs/#!/model/model.user_logins.user_logins")
    expect(page.locator("body")).to_contain_text("HMAC-SHA256 (hex) of the canonical IP")
    page.locator(".launcher-btn").first.click()
    expect(page.locator("canvas").first).to_be_visible()  # the lineage graph (cytoscape)
    page.wait_for_timeout(500)
    shot(page, "pii_admin-docs-lineage")
    assert [e for e in errors if "Content Security Policy" in e or "Error" in e] == []
    page.context.close()


def test_the_docs_site_describes_every_column(console: Console) -> None:
    docs = console.pipeline.workdir / "docs"
    manifest = json.loads((docs / "manifest.json").read_text())
    catalog = json.loads((docs / "catalog.json").read_text())
    assert catalog["nodes"], "dbt docs generate found no built model"
    described = {**manifest["nodes"], **manifest["sources"]}
    undocumented = [
        f"{unique_id}.{column}"
        for unique_id, node in {**catalog["nodes"], **catalog["sources"]}.items()
        for column in node["columns"]
        if not described[unique_id]["columns"].get(column, {}).get("description")
    ]
    assert undocumented == []


def test_logins_console_serves_the_console(console: Console) -> None:
    """The command as a user starts it: pointed at the configured database, on the port asked."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "loader.cli", "console", "--port", str(port)],
        env=console.pipeline.env,
        cwd=console.pipeline.workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until_answers("127.0.0.1", port, 60)
        page = console.browser.new_page()
        response = page.goto(f"http://127.0.0.1:{port}/signin")
        assert response is not None
        assert response.status == 200
        assert response.headers["content-security-policy"].startswith("default-src 'self'")
        page.fill("input[name=user]", console.role("analyst"))
        page.fill("input[name=password]", ROLE_PASSWORD)
        page.click("button[type=submit]")
        expect(page.locator("h1")).to_have_text("Overview")
        page.close()
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=30)
    assert f"logins console on http://127.0.0.1:{port}/" in output
    assert ROLE_PASSWORD not in output


def test_duplicates_list_shared_masks_and_drill_down_to_their_rows(console: Console) -> None:
    records = valid_records(SAMPLE.read_text().splitlines())
    users: dict[tuple[str, str], set[str]] = {}
    for r in records:
        for kind, value in (("ip", canonical_ip(r["ip"])), ("device_id", r["device_id"])):
            users.setdefault((kind, mask(kind, value)), set()).add(r["user_id"])
    shared = {key: len(ids) for key, ids in users.items() if len(ids) > 1}
    page = console.signed_in("analyst")
    page.goto("/duplicates")
    listed = {
        (kind, row.locator("td.mask").inner_text()): int(row.locator("td.num").first.inner_text())
        for kind in ("ip", "device_id")
        for row in page.locator(f"#shared-{kind} tbody tr:has(td.mask)").all()
    }
    assert listed == shared
    html = page.content()
    assert not [r for r in records if canonical_ip(r["ip"]) in html or r["device_id"] in html]
    if shared:
        (kind, first), count = next(iter(sorted(shared.items())))
        page.click(f"a[href='/duplicates/{kind}/{first}']")
        expect(page.locator("h1")).to_have_text(f"Rows with {kind} mask")
        rows = page.locator("table.rows tbody tr")
        assert len({row.locator("td").first.inner_text() for row in rows.all()}) == count
        shot(page, "analyst-duplicates-rows")
    response = page.goto(f"/duplicates/ip/{'0' * 64}")
    assert response is not None
    assert response.status == 404
    expect(page.locator("#error-message")).to_contain_text("no row has the ip mask")
    page.context.close()


def test_a_lost_connection_is_a_plain_error_page_then_a_new_sign_in(console: Console) -> None:
    page = console.signed_in("analyst")
    admin = connect(console.pipeline.database)
    with admin.cursor() as cursor:
        cursor.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity"
            " where usename = %s and datname = %s",
            (console.role("analyst"), console.pipeline.database),
        )
    admin.close()
    response = page.goto("/duplicates")
    assert response is not None
    assert response.status == 500
    expect(page.locator("#error-message")).to_have_text(
        "Something went wrong on the server. The details are not shown here."
    )
    assert "Traceback" not in page.content()
    assert "psycopg2" not in page.content()
    page.goto("/duplicates")
    assert page.url.endswith("/signin?expired=1")
    page.context.close()
