"""The report and the lineage site render in a real browser: headless Chromium driven by
Playwright shows the report's tables and figures and the `kedro viz build` site's pipeline, with
no error in the console.

    ATFT_SCREENSHOT=docs/images/report.png pytest tests/e2e/test_browser.py   # README picture
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.e2e.conftest import KEDRO

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="Chromium is not installed (`.ci/run` installs "
        "Debian's chromium; locally: apt-get install chromium)",
    ),
]


# Console errors of Kedro-Viz's own static export, not of this project: the app asks for
# `api/metadata`, which `kedro viz build` does not write (404, then a JSON parse error), and for
# an external font or analytics host, which an offline machine cannot resolve.
VIZ_KNOWN = ("ERR_NAME_NOT_RESOLVED", "status of 404", "metadata fetch error")


@contextmanager
def browser_page() -> Iterator[tuple]:
    """A headless Chromium page and the list its console errors and page errors go to."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        try:
            yield page, errors
        finally:
            browser.close()


@contextmanager
def served(folder: Path) -> Iterator[str]:
    """``folder`` over HTTP on a free local port (the viz site fetches its JSON)."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()


def test_report_shows_its_tables_and_figures_without_console_errors(tiny_run):
    report = tiny_run.path / "data" / "08_reporting" / "report.html"
    with browser_page() as (page, errors):
        page.goto(report.as_uri(), wait_until="load")
        tables = page.locator("table").count()
        images = page.evaluate("Array.from(document.images).map(i => [i.complete, i.naturalWidth])")
        text = page.inner_text("body")
        if os.environ.get("ATFT_SCREENSHOT"):
            page.screenshot(path=os.environ["ATFT_SCREENSHOT"])
    assert not errors, errors
    assert tables >= 8, f"{tables} tables"
    assert len(images) >= 10 and all(done and width > 0 for done, width in images), images
    assert "RankIC" in text and "by when the trade happens" in text  # the views table


def test_kedro_viz_site_draws_the_pipeline_without_console_errors(tiny_run):
    build = tiny_run.path / "build"
    if not (build / "index.html").exists():
        env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"}
        done = subprocess.run(
            [KEDRO, "viz", "build"],
            cwd=tiny_run.path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
    with served(build) as url, browser_page() as (page, errors):
        page.goto(url, wait_until="networkidle")
        page.wait_for_selector("svg", timeout=30_000)
        text = page.inner_text("body")
    assert not [e for e in errors if not any(k in e for k in VIZ_KNOWN)], errors
    # one collapsed group per pipeline (its namespace), not one flat sheet of nodes
    groups = {"data_processing", "graph", "training", "reporting"}
    assert groups <= set(text.splitlines()), text[:500]
