"""End to end on a real daemon: a prompt job is planned and run, ``orchestrator rate`` rates it,
``orchestrator agent scores`` shows what was learned, and the next prompt job plans differently."""

from __future__ import annotations

import json

import pytest

PROMPT = "a red fox in the snow"


def cli(state, capsys, *argv: str) -> tuple[int, str, str]:
    from orchestrator.cli.main import main

    code = main(["--state-dir", str(state), *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.slow
def test_a_rating_from_the_cli_changes_the_next_prompt_job(daemon, capsys) -> None:
    with daemon.client() as c:
        job = c.submit(PROMPT)
        info = job.wait(timeout=300)
        assert info["state"] == "succeeded", info.get("errors")
        first = c.job(job.id)
    graph = first.info["graph"]
    template = graph["meta"]["template"]

    # hostile scores are refused before anything is sent
    for bad in ("0", "6", "nan", "-1"):
        code, _, err = cli(daemon.state, capsys, "rate", job.id, bad, "--url", daemon.url)
        assert code != 0 and ("stars" in err or "invalid" in err)
    code, _, err = cli(daemon.state, capsys, "rate", "0123456789abcdef", "3", "--url", daemon.url)
    assert code == 1 and "no job" in err

    code, out, _ = cli(daemon.state, capsys, "rate", job.id, "1", "--url", daemon.url)
    assert code == 0 and f"{job.id} rated 1" in out and "learned" in out
    code, out, _ = cli(daemon.state, capsys, "agent", "scores", "--json")
    scores = json.loads(out)
    assert scores["sources"] == {"rating": 1}
    assert {"label": "wildlife", "template": template, "count": 1, "mean": 0.0} in scores["rows"]
    assert any(r["template"] == template and r["model"] for r in scores["models"])
    code, out, _ = cli(daemon.state, capsys, "agent", "scores")
    assert "learned from 1 rating(s)" in out and "per model:" in out

    with daemon.client() as c:
        again = c.submit(PROMPT)
        info = again.wait(timeout=300)
        assert info["state"] == "succeeded", info.get("errors")
        assert c.job(again.id).info["graph"]["meta"]["template"] != template
        assert c.job(job.id).rating() == 1
