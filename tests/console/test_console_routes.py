"""The web console's routes and files, on the real app (no browser; no model is loaded).

The pages themselves are driven by a real chromium in test_console_browser.py (marked
`browser`, run by `make console-test`).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.console import STATIC
from service.settings import Settings
from tests.service.test_api import assert_error

PAGES = ("index.html", "kb.html", "status.html")
TYPES = {".html": "text/html", ".css": "text/css", ".js": "javascript"}


class Assets(HTMLParser):
    """The scripts and stylesheets a page loads."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Collect `<script src>` and `<link href>`."""
        values = dict(attrs)
        ref = values.get("src") if tag == "script" else values.get("href") if tag == "link" \
            else None
        if ref:
            self.found.append(ref)


def client(tmp_path: Path, **settings: object) -> TestClient:
    """The app as `cogcore serve` builds it; its routes answer while the model would load."""
    return TestClient(create_app(Settings(model_dir=tmp_path, load_embedder=False,
                                          **settings)))


def test_root_opens_the_console_and_its_pages_load_their_files(tmp_path: Path) -> None:
    c = client(tmp_path, api_keys=["read"], admin_keys=["admin"])
    root = c.get("/", follow_redirects=False)
    assert root.status_code == 307 and root.headers["location"] == "/console/"
    index = c.get("/", follow_redirects=True)  # no key: the page itself is open
    assert index.status_code == 200 and index.url.path == "/console/"
    assert index.text == (STATIC / "index.html").read_text()
    assert_error(c.get("/v1/models"), 401, "invalid_api_key")  # its calls need the key
    for page in PAGES:
        response = c.get(f"/console/{page}")
        assert response.status_code == 200, page
        assert response.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in response.headers["content-security-policy"]
        parser = Assets()
        parser.feed(response.text)
        assert "common.js" in parser.found and "style.css" in parser.found, page
        for ref in parser.found:
            asset = c.get(f"/console/{ref}")
            assert asset.status_code == 200, (page, ref)
            assert TYPES[Path(ref).suffix] in asset.headers["content-type"], ref
            assert asset.content == (STATIC / ref).read_bytes()


def test_every_console_file_is_served_and_fetches_nothing_from_elsewhere(
        tmp_path: Path) -> None:
    c = client(tmp_path)
    files = sorted(p for p in STATIC.iterdir() if p.is_file())
    assert {p.suffix for p in files} == set(TYPES)
    for path in files:
        assert c.get(f"/console/{path.name}").status_code == 200, path.name
        # The one absolute URL allowed is SVG's namespace name, which nothing fetches.
        text = path.read_text().replace("http://www.w3.org/2000/svg", "")
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I), path.name


def test_console_off_leaves_only_the_api(tmp_path: Path) -> None:
    c = client(tmp_path, console=False)
    assert_error(c.get("/", follow_redirects=False), 404, None)
    assert_error(c.get("/console/index.html"), 404, None)
    assert c.get("/health").json() == {"status": "ok"}


def test_console_changes_neither_the_api_errors_nor_the_schema(tmp_path: Path) -> None:
    on, off = client(tmp_path), client(tmp_path, console=False)
    for c in (on, off):
        assert_error(c.get("/v1/nowhere"), 404, None)
        assert_error(c.get("/console/missing.js" if c is on else "/nowhere"), 404, None)
        assert c.get("/v1/chat/completions").status_code == 405
    assert on.get("/openapi.json").json() == off.get("/openapi.json").json()


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
@pytest.mark.parametrize("script", sorted(p.name for p in STATIC.glob("*.js")))
def test_scripts_parse(script: str) -> None:
    checked = subprocess.run(["node", "--check", str(STATIC / script)], capture_output=True,
                             text=True, timeout=60)
    assert checked.returncode == 0, checked.stderr
