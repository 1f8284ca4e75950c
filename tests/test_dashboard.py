"""The dashboard, driven in a real headless Chromium (Debian's package) with Playwright."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import httpx
import pytest

from graphs import GraphBuilder

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

CHROMIUM = os.environ.get("ORCHESTRATOR_CHROMIUM", "/usr/bin/chromium")
if not shutil.which(CHROMIUM) and not os.environ.get("ORCHESTRATOR_REQUIRE_BROWSER"):
    pytest.skip("Chromium is not installed (CI installs it)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")

from screenshots import launch, take_screenshots  # noqa: E402


def _graph(steps: int, name: str):
    b = GraphBuilder()
    s = b.add("test.slow", id="slow", steps=steps, step_s=0.05, value=0.7)
    b.add("image.save", id="save", image=s.image, name=name)
    return b.build()


def test_queue_progress_gallery_and_job_page(daemon, tmp_path):
    with sync_api.sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page()
        page.goto(f"{daemon.url}/")
        page.wait_for_selector("#counts:not(:empty)")
        with daemon.client() as c:
            job = c.submit(graph=_graph(40, "shown"), name="watched job")
            row = page.wait_for_selector(f"tr.job[data-id='{job.id}']", timeout=15000)
            assert "watched job" in row.inner_text()
            # progress moves: two different step counts are seen while it runs
            first = page.wait_for_selector(f"tr.job[data-id='{job.id}'] .progress-text", timeout=15000)
            seen = {first.inner_text()}
            for _ in range(40):
                page.wait_for_timeout(100)
                el = page.query_selector(f"tr.job[data-id='{job.id}'] .progress-text")
                if el:
                    seen.add(el.inner_text())
                if len(seen) >= 2:
                    break
            assert len(seen) >= 2, seen
            preview = page.wait_for_selector(f"tr.job[data-id='{job.id}'] img.preview", timeout=15000)
            assert "/preview.png" in preview.get_attribute("src")
            job.wait(timeout=60)
        img = page.wait_for_selector("#gallery figure.output img[alt='shown']", timeout=15000)
        page.wait_for_function("img => img.complete && img.naturalWidth === 8", arg=img)
        page.click(f"#gallery a[href='/ui/jobs/{job.id}']")
        page.wait_for_selector("#graph svg")
        assert page.inner_text("#job-state") == "succeeded"
        nodes = page.query_selector_all("#graph svg g.node")
        assert sorted(n.get_attribute("data-node") for n in nodes) == ["save", "slow"]
        assert "no agent rounds" in page.inner_text("#trace")
        browser.close()
    svg = httpx.get(f"{daemon.url}/jobs/{job.id}/graph.svg")
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg")
    shots = take_screenshots(daemon.url, tmp_path / "shots", job.id)
    assert [s.name for s in shots] == ["dashboard.png", "job.png"]
    assert all(s.stat().st_size > 10_000 for s in shots)


def test_dashboard_follows_the_token_rules(state):
    from daemon_process import Daemon

    d = Daemon(state, env={"ORCHESTRATOR_TOKEN": "tok-123"}).start()
    try:
        assert httpx.get(f"{d.url}/").status_code == 401
        assert httpx.get(f"{d.url}/ui/api/overview").status_code == 401
        with d.client(token="tok-123") as c:
            job = c.submit(graph=_graph(2, "behind-token"))
            job.wait(timeout=120)
        with sync_api.sync_playwright() as p:
            browser = launch(p)
            page = browser.new_page()
            page.goto(f"{d.url}/?token=tok-123")
            page.wait_for_selector("#counts:not(:empty)")
            assert "succeeded: 1" in page.inner_text("#counts")
            assert "token" not in page.url  # the token left the address bar (and the history)
            # the gallery's image and the job page load with the session cookie alone
            page.wait_for_function("() => [...document.querySelectorAll('#gallery img')]"
                                   ".some(i => i.complete && i.naturalWidth > 0)")
            page.click(f"a[href='/ui/jobs/{job.id}']")
            page.wait_for_selector("#graph svg")
            assert page.inner_text("#job-state") == "succeeded"
            browser.close()
    finally:
        d.kill()
