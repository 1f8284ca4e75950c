"""Screenshots of the dashboard for a person to look at.

    python scripts/screenshots.py OUT_DIR            # starts a throw-away daemon, runs jobs
    python scripts/screenshots.py OUT_DIR --url URL  # against a running daemon

With the ``[editor]`` extra installed it also captures the ComfyUI editor at ``/comfy/``
(``editor.png``; the throw-away daemon runs its default workflow on tiny-sd first).

Needs Chromium (Debian's ``chromium`` package) and the ``playwright`` Python package; it
never downloads a browser.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

CHROMIUM = os.environ.get("ORCHESTRATOR_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def launch(playwright):  # type: ignore[no-untyped-def]
    """Debian's Chromium, headless, with nothing reaching outside."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


def take_screenshots(url: str, out_dir: Path, job_id: str | None = None) -> list[Path]:
    """Screenshot the dashboard and, if given, one job's page; returns the files."""
    from playwright.sync_api import sync_playwright

    out_dir.mkdir(parents=True, exist_ok=True)
    shots = []
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{url}/")
        page.wait_for_selector("#counts:not(:empty)")
        time.sleep(0.5)
        shots.append(out_dir / "dashboard.png")
        page.screenshot(path=str(shots[-1]), full_page=True)
        if job_id:
            page.goto(f"{url}/ui/jobs/{job_id}")
            page.wait_for_selector("#graph svg")
            shots.append(out_dir / "job.png")
            page.screenshot(path=str(shots[-1]), full_page=True)
        browser.close()
    return shots


EDITOR_CHECKPOINT = "v1-5-pruned-emaonly-fp16.safetensors"  # what the editor's default workflow names


def capture_editor(url: str, out_dir: Path, run: bool = True, timeout_s: float = 600.0) -> Path:
    """Screenshot the ComfyUI editor at ``/comfy/`` (``editor.png``); with ``run``, after its
    default workflow ran (Run clicked, the image shown in the SaveImage node)."""
    from playwright.sync_api import sync_playwright

    out_dir.mkdir(parents=True, exist_ok=True)
    shot = out_dir / "editor.png"
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1600, "height": 900})
        page.goto(f"{url}/comfy/")
        page.wait_for_function("window.app && window.app.graph && window.app.graph._nodes.length > 0",
                               timeout=120_000)
        if run:
            page.locator("[data-testid='queue-button']").first.click()
            page.wait_for_function("(() => { const n = window.app.graph._nodes.find(n => n.type === "
                                   "'SaveImage'); return n && n.imgs && n.imgs.length && "
                                   "n.imgs[0].naturalWidth })()", timeout=timeout_s * 1000)
        page.evaluate("(() => { const c = window.app.canvas; c.ds.scale = 0.75; c.ds.offset = [40, 40]; "
                      "c.setDirty(true, true); })()")
        time.sleep(0.5)
        page.screenshot(path=str(shot))
        browser.close()
    return shot


def _demo(out_dir: Path) -> list[Path]:
    root = Path(__file__).resolve().parents[1]
    sys.path[:0] = [str(root / "tests"), str(root)]
    from daemon_process import Daemon

    from graphs import GraphBuilder

    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.toml"  # tiny-sd under the editor default workflow's checkpoint name
        config.write_text(f'[[models]]\nname = "{EDITOR_CHECKPOINT}"\nsource = "builtin:tiny-sd"\n')
        daemon = Daemon(Path(tmp), env={"ORCHESTRATOR_CONFIG": str(config)}).start()
        try:
            with daemon.client() as c:
                done = None
                for i in range(3):
                    b = GraphBuilder()
                    s = b.add("test.slow", id="slow", steps=3, step_s=0.05, value=0.2 + 0.3 * i)
                    b.add("image.save", id="save", image=s.image, name=f"demo{i}")
                    done = c.submit(graph=b.build(), name=f"demo {i}")
                assert done is not None
                done.wait(timeout=60)
                b = GraphBuilder()
                b.add("test.slow", id="slow", steps=400, step_s=0.05)
                c.submit(graph=b.build(), name="long job")
                time.sleep(1.0)
                shots = take_screenshots(daemon.url, out_dir, done.id)
                for running in c.jobs(state="running"):  # free the worker for the editor's run
                    c.job(running["id"]).cancel()
            if _editor_installed():
                shots.append(capture_editor(daemon.url, out_dir))
            return shots
        finally:
            daemon.kill()


def _editor_installed() -> bool:
    try:
        import comfyui_frontend_package  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--url", help="a running daemon")
    parser.add_argument("--job", help="a job id whose page to capture")
    args = parser.parse_args()
    if args.url:
        shots = take_screenshots(args.url, args.out_dir, args.job)
        if _editor_installed():
            shots.append(capture_editor(args.url, args.out_dir, run=False))
    else:
        shots = _demo(args.out_dir)
    for s in shots:
        print(s)


if __name__ == "__main__":
    main()
