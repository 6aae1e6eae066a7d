"""The dbt docs site (`logins docs` generates it) under /docs, behind the same sign-in. dbt's
index.html runs inline scripts: it gets a CSP of its own allowing exactly those scripts, by
their sha256 hashes computed as it is served, not 'unsafe-inline'."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from loader.console.web import visit

# the files `dbt docs generate` writes that the site reads
SERVED = {"index.html", "manifest.json", "catalog.json"}
INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.DOTALL)


def docs_csp(index: bytes) -> str:
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(body).digest()).decode()}'"
        for body in INLINE_SCRIPT.findall(index)
    )
    # dbt's bundle sets styles from script and puts <style> elements in the page
    return (
        f"default-src 'self'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self' data:; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    )


async def docs(request: Request) -> Response:
    current = visit(request)
    folder: Path | None = current.console.config.docs_dir
    name = request.path_params.get("name") or "index.html"
    if folder is None or not (folder / "index.html").is_file():
        return current.render(
            "error.html",
            {
                "title": "Docs not generated",
                "message": "The dbt docs site is not generated yet: run `logins docs`, "
                "then reload.",
            },
            404,
        )
    if name not in SERVED or not (folder / name).is_file():
        return current.render("error.html", {"title": "Not found", "message": "Not found."}, 404)
    if name == "index.html":
        index = (folder / name).read_bytes()
        return Response(
            index, media_type="text/html", headers={"content-security-policy": docs_csp(index)}
        )
    return FileResponse(folder / name)


routes = [
    Route("/docs", docs, methods=["GET"]),
    Route("/docs/", docs, methods=["GET"]),
    Route("/docs/{name}", docs, methods=["GET"]),
]
