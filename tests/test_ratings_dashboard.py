"""The dashboard's rating control in a real headless Chromium: stars on the gallery and the
job page POST the rating with the session cookie alone (same origin), against a real daemon."""

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

from screenshots import launch  # noqa: E402

TOKEN = "tok-ratings-123"


def _graph(name: str):
    b = GraphBuilder()
    s = b.add("test.slow", id="slow", steps=2, step_s=0.01, value=0.4)
    b.add("image.save", id="save", image=s.image, name=name)
    return b.build()


@pytest.mark.slow
def test_stars_on_the_gallery_and_the_job_page_rate_the_job(state) -> None:
    from daemon_process import Daemon

    d = Daemon(state, env={"ORCHESTRATOR_TOKEN": TOKEN}).start()
    try:
        with d.client(token=TOKEN) as c:
            job = c.submit(graph=_graph("rated"))
            job.wait(timeout=120)
            queued = c.submit(graph=_graph("other"))
            queued.wait(timeout=120)
        # without the cookie or the token the route refuses, and nothing is rated
        assert httpx.post(f"{d.url}/jobs/{job.id}/rating", json={"score": 5}).status_code == 401
        with sync_api.sync_playwright() as p:
            browser = launch(p)
            page = browser.new_page()
            page.goto(f"{d.url}/?token={TOKEN}")
            star = f"#gallery button.star[data-job='{job.id}'][data-score='4']"
            page.wait_for_selector(star)
            page.click(star)
            page.wait_for_function(
                f"() => document.querySelector(\".rating-note[data-job='{job.id}']\").textContent.trim()"
                " === 'saved'")
            with d.client(token=TOKEN) as c:
                assert c.job(job.id).rating() == 4
                assert c.job(queued.id).rating() is None
            # the job page shows the rating and changes it
            page.goto(f"{d.url}/ui/jobs/{job.id}")
            page.wait_for_selector("#rating button.star")
            on = page.eval_on_selector_all("#rating button.star.on", "bs => bs.length")
            assert on == 4
            page.click("#rating button.star[data-score='2']")
            page.wait_for_function("() => document.querySelectorAll('#rating button.star.on').length === 2")
            with d.client(token=TOKEN) as c:
                assert c.job(job.id).rating() == 2
            # the gallery reflects it after a refresh
            page.goto(f"{d.url}/")
            page.wait_for_selector(star)
            on = page.eval_on_selector_all(f"#gallery button.star.on[data-job='{job.id}']", "bs => bs.length")
            assert on == 2
            browser.close()
    finally:
        d.kill()
