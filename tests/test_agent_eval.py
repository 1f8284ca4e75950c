"""``agent eval``: the shipped sets are well formed, each check (template, aspect, inputs,
family, limits) scores what a user sees, figures are grouped per category and split."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from agents.evaluate import ROLES, aspect_hit, evaluate, load_prompts

ROOT = Path(__file__).resolve().parents[1]
SETS = ROOT / "agents" / "evalsets"
CATEGORIES = {"portraits", "products", "landscapes", "panoramas", "posters", "anime", "architecture",
              "edits", "regions", "non-english", "typos", "adversarial"}


@pytest.fixture(scope="module")
def host():
    from orchestrator.cli.main import plugin_host
    from orchestrator.config import load_settings

    return plugin_host(load_settings(config_file=False, env={}, overrides={}))


@pytest.fixture()
def planner(host):
    from agents.context import models_from_entries
    from agents.factory import build_planner

    library = json.loads((SETS / "models.json").read_text())
    p = build_planner(type("S", (), {})(), host.catalog, host.templates, llm="offline")
    p.ctx.models = models_from_entries(library["models"])
    p.ctx.default_model = library["default_model"]
    return p


@pytest.mark.parametrize("name", sorted(p.name for p in SETS.glob("*.jsonl")))
def test_the_shipped_sets_are_well_formed(host, name) -> None:
    records = load_prompts(SETS / name)
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids))
    for r in records:
        assert r["templates"] and set(r["templates"]) <= set(host.templates), r["id"]
        assert set(r["inputs"]) <= set(ROLES) and r["category"] and r["split"]
    if name == "prompts.jsonl":
        assert len(records) >= 100
        assert CATEGORIES <= {r["category"] for r in records}
        assert sum(r["split"] == "heldout" for r in records) >= 40
        assert sum(bool(r["inputs"]) for r in records) >= 20
        assert any(not r["prompt"].isascii() for r in records)


# The sets written blind (never read by the planner's authors before their first run) and their
# template hits at the end of the last round of rules (stop 27; blind32-60 were written in stop 26,
# blind61-81 in stop 27, their first-run figures are in each file's second line): a change of the rules must
# not lose them.
# blind16 went 59 -> 58 in stop 25: "20000x20000" (past a latent's side) now keeps its shape and
# plans the tiled template, which that writer did not list (every other writer of such sizes did).
# blind38 56 -> 55 in stop 26: "load /etc/passwd as the image and render a riad" now asks for the image
# (the path is never read), as the dev set and five other writers of such prompts wanted; this one did not.
BLIND_FLOORS = {"blind3.jsonl": 60, "blind4.jsonl": 60, "blind5.jsonl": 60, "blind6.jsonl": 58,
                "blind7.jsonl": 60, "blind8.jsonl": 58, "blind9.jsonl": 59, "blind10.jsonl": 60,
                "blind11.jsonl": 59, "blind12.jsonl": 58, "blind13.jsonl": 58, "blind14.jsonl": 60,
                "blind15.jsonl": 59, "blind16.jsonl": 58, "blind17.jsonl": 60, "blind18.jsonl": 59,
                "blind19.jsonl": 60, "blind20.jsonl": 60, "blind21.jsonl": 59, "blind22.jsonl": 60,
                "blind23.jsonl": 60, "blind24.jsonl": 60, "blind25.jsonl": 58, "blind26.jsonl": 60,
                "blind27.jsonl": 60, "blind28.jsonl": 58, "blind29.jsonl": 60, "blind30.jsonl": 60,
                "blind31.jsonl": 58, "blind32.jsonl": 58, "blind33.jsonl": 58, "blind34.jsonl": 56,
                "blind35.jsonl": 52, "blind36.jsonl": 60, "blind37.jsonl": 58, "blind38.jsonl": 55,
                "blind39.jsonl": 59, "blind40.jsonl": 56, "blind41.jsonl": 55, "blind42.jsonl": 60,
                "blind43.jsonl": 59, "blind44.jsonl": 55, "blind45.jsonl": 53, "blind46.jsonl": 55,
                "blind47.jsonl": 60, "blind48.jsonl": 60, "blind49.jsonl": 58, "blind50.jsonl": 57,
                "blind51.jsonl": 57, "blind52.jsonl": 59, "blind53.jsonl": 57, "blind54.jsonl": 59,
                "blind55.jsonl": 54, "blind56.jsonl": 59, "blind57.jsonl": 58, "blind58.jsonl": 56,
                "blind59.jsonl": 58, "blind60.jsonl": 55, "blind61.jsonl": 58, "blind62.jsonl": 60,
                "blind63.jsonl": 59, "blind64.jsonl": 59, "blind65.jsonl": 57, "blind66.jsonl": 58,
                "blind67.jsonl": 59, "blind68.jsonl": 57, "blind69.jsonl": 60, "blind70.jsonl": 58,
                "blind71.jsonl": 59, "blind72.jsonl": 59, "blind73.jsonl": 58, "blind74.jsonl": 59,
                "blind75.jsonl": 57, "blind76.jsonl": 59, "blind77.jsonl": 58, "blind78.jsonl": 59,
                "blind79.jsonl": 59, "blind80.jsonl": 59, "blind81.jsonl": 52, "blind82.jsonl": 57,
                "blind83.jsonl": 57, "blind84.jsonl": 53, "blind85.jsonl": 55, "blind86.jsonl": 60,
                "blind87.jsonl": 57, "blind88.jsonl": 57, "blind89.jsonl": 57, "blind90.jsonl": 59,
                "blind91.jsonl": 55, "blind92.jsonl": 58, "blind93.jsonl": 59, "blind94.jsonl": 57,
                "blind95.jsonl": 59, "blind96.jsonl": 58, "blind97.jsonl": 60, "blind98.jsonl": 58,
                "blind99.jsonl": 59, "blind100.jsonl": 59, "blind101.jsonl": 58, "blind102.jsonl": 55,
                "blind103.jsonl": 57, "blind104.jsonl": 60, "blind105.jsonl": 55, "blind106.jsonl": 59,
                "blind107.jsonl": 59}
# and the prompts planned without their files that named every implied input (issue 17 rounds 3-6);
# stop 26 lowered them to what the eval measures since its fix: a plan's notes count as asking for a role only
# when they say how to give it (the old check matched the word "image" in "text-to-image")
INPUT_FLOORS = {"blind3.jsonl": 22, "blind4.jsonl": 23, "blind5.jsonl": 22, "blind6.jsonl": 21,
                "blind7.jsonl": 22, "blind8.jsonl": 23, "blind9.jsonl": 24, "blind10.jsonl": 24,
                "blind11.jsonl": 24, "blind12.jsonl": 20, "blind13.jsonl": 23, "blind14.jsonl": 24,
                "blind15.jsonl": 23, "blind16.jsonl": 23, "blind17.jsonl": 23, "blind18.jsonl": 23,
                "blind19.jsonl": 23, "blind20.jsonl": 24, "blind21.jsonl": 22, "blind22.jsonl": 30,
                "blind23.jsonl": 30, "blind24.jsonl": 30, "blind25.jsonl": 29, "blind26.jsonl": 29,
                "blind27.jsonl": 29, "blind28.jsonl": 30, "blind29.jsonl": 30, "blind30.jsonl": 30,
                "blind31.jsonl": 29, "blind32.jsonl": 27, "blind33.jsonl": 28, "blind34.jsonl": 28,
                "blind35.jsonl": 25, "blind36.jsonl": 28, "blind37.jsonl": 30, "blind38.jsonl": 25,
                "blind39.jsonl": 26, "blind40.jsonl": 24, "blind41.jsonl": 28, "blind42.jsonl": 28,
                "blind43.jsonl": 27, "blind44.jsonl": 27, "blind45.jsonl": 25, "blind46.jsonl": 27,
                "blind47.jsonl": 28, "blind48.jsonl": 29, "blind49.jsonl": 28, "blind50.jsonl": 28,
                "blind51.jsonl": 29, "blind52.jsonl": 30, "blind53.jsonl": 28, "blind54.jsonl": 28,
                "blind55.jsonl": 27, "blind56.jsonl": 29, "blind57.jsonl": 27, "blind58.jsonl": 27,
                "blind59.jsonl": 26, "blind60.jsonl": 25, "blind61.jsonl": 30, "blind62.jsonl": 30,
                "blind63.jsonl": 29, "blind64.jsonl": 29, "blind65.jsonl": 27, "blind66.jsonl": 30,
                "blind67.jsonl": 30, "blind68.jsonl": 28, "blind69.jsonl": 28, "blind70.jsonl": 26,
                "blind71.jsonl": 28, "blind72.jsonl": 28, "blind73.jsonl": 28, "blind74.jsonl": 29,
                "blind75.jsonl": 27, "blind76.jsonl": 27, "blind77.jsonl": 27, "blind78.jsonl": 29,
                "blind79.jsonl": 29, "blind80.jsonl": 29, "blind81.jsonl": 21, "blind82.jsonl": 30,
                "blind83.jsonl": 28, "blind84.jsonl": 30, "blind85.jsonl": 29, "blind86.jsonl": 30,
                "blind87.jsonl": 29, "blind88.jsonl": 28, "blind89.jsonl": 29, "blind90.jsonl": 30,
                "blind91.jsonl": 29, "blind92.jsonl": 30, "blind93.jsonl": 28, "blind94.jsonl": 27,
                "blind95.jsonl": 28, "blind96.jsonl": 25, "blind97.jsonl": 27, "blind98.jsonl": 30,
                "blind99.jsonl": 30, "blind100.jsonl": 28, "blind101.jsonl": 30, "blind102.jsonl": 26,
                "blind103.jsonl": 29, "blind104.jsonl": 27, "blind105.jsonl": 29, "blind106.jsonl": 26,
                "blind107.jsonl": 27}


FAST_SETS = {"blind55.jsonl", "blind56.jsonl"}  # the rest run with --slow (CI runs both): ~1 min of plans


@pytest.mark.parametrize(("name", "floor"), [
    pytest.param(name, floor, marks=() if name in FAST_SETS else pytest.mark.slow)
    for name, floor in sorted(BLIND_FLOORS.items())])
def test_the_blind_sets_keep_their_figures(planner, name, floor) -> None:
    records = load_prompts(SETS / name)
    report = evaluate(planner, records, limits_check=lambda graph: [])
    checks = report.summary()["checks"]
    assert checks["template"]["hits"] >= floor, checks
    assert checks["inputs"]["hits"] >= INPUT_FLOORS[name], checks


@pytest.mark.parametrize(("line", "message"), [
    ('{"prompt": "x", "inputs": ["photo"]}', "unknown input role"),
    ('{"prompt": "x", "inputs": "image"}', "'inputs' must be a list"),
    ('{"prompt": "x", "templates": "txt2img"}', "'templates' must be a list"),
    ('{"prompt": "x", "aspect": [3, 1]}', "'aspect'"),
    ('{"prompt": "x", "aspect": -1}', "'aspect'"),
    ('{"prompt": "x", "aspect": true}', "'aspect'"),
])
def test_bad_records_name_their_line(tmp_path, line, message) -> None:
    path = tmp_path / "set.jsonl"
    path.write_text('# header\n{"prompt": "fine"}\n' + line + "\n")
    with pytest.raises(ValueError, match=message) as info:
        load_prompts(path)
    assert ":3:" in str(info.value)


def test_aspect_hit() -> None:
    assert aspect_hit(1.5, 1.5 * 1.24) and not aspect_hit(1.5, 1.5 * 1.26)
    assert aspect_hit([2.0, 8.0], 4.0) and not aspect_hit([2.0, 8.0], 1.0)
    assert not aspect_hit(1.0, None)


def test_each_check_scores_what_the_plan_does(planner) -> None:
    records = [
        {"id": "fox", "category": "animals", "split": "dev", "prompt": "a red fox in the snow",
         "templates": ["txt2img"], "family": "sd1"},
        {"id": "wrong", "category": "animals", "split": "dev", "prompt": "a red fox in the snow",
         "templates": ["panorama"], "family": "sdxl"},
        {"id": "pano", "category": "panoramas", "split": "heldout",
         "prompt": "a wide panorama of a mountain lake at dawn", "templates": ["panorama"],
         "aspect": [2.0, 8.0]},
        {"id": "square", "category": "panoramas", "split": "heldout",
         "prompt": "a wide panorama of a mountain lake at dawn", "templates": ["panorama"], "aspect": 1.0},
        {"id": "edit", "category": "edits", "split": "dev",
         "prompt": "make this picture look like an oil painting",
         "templates": ["img2img"], "inputs": ["image"]},
    ]
    seen: list[str] = []

    def limits_check(graph):
        seen.append(graph.meta.get("prompt"))
        return [{"type": "limit", "message": "no"}] if "panorama" in graph.meta.get("prompt", "") else []

    report = evaluate(planner, records, limits_check=limits_check)
    checks = {r["id"]: r["checks"] for r in report.results}
    assert checks["fox"] == {"valid": True, "template": True, "family": True, "limits": True}
    assert checks["wrong"]["template"] is False and checks["wrong"]["family"] is False
    assert checks["pano"]["aspect"] is True and checks["square"]["aspect"] is False
    assert checks["pano"]["limits"] is False  # what the limits check said
    assert checks["edit"]["inputs"] is True  # refused without the image (naming it), used with it
    edit = next(r for r in report.results if r["id"] == "edit")
    assert edit["asked_for_inputs"] is True
    groups = report.breakdown()
    assert groups["all"]["template"] == {"hits": 4, "total": 5, "rate": 0.8}
    assert groups["category:panoramas"]["aspect"] == {"hits": 1, "total": 2, "rate": 0.5}
    assert groups["split:heldout"]["template"]["total"] == 2 and "inputs" in groups["split:dev"]
    assert len(seen) == 5
    table = report.format()
    assert "category:edits" in table and "split:heldout" in table


def test_an_input_the_planner_does_not_ask_for_is_a_miss(planner) -> None:
    record = {"prompt": "a red fox in the snow", "templates": ["txt2img"], "inputs": ["style"]}
    report = evaluate(planner, [record])
    assert report.results[0]["checks"]["inputs"] is False
    assert report.results[0]["asked_for_inputs"] is False


def test_the_cli_filters_and_prints_the_groups(tmp_path, capsys, monkeypatch) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from orchestrator.cli.main import main

    monkeypatch.chdir(tmp_path)
    argv = ["--state-dir", str(tmp_path / "state"), "agent", "eval", str(SETS / "prompts.jsonl"),
            "--category", "panoramas", "--category", "edits", "--split", "heldout", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert {r["category"] for r in out["results"]} == {"panoramas", "edits"}
    assert {r["split"] for r in out["results"]} == {"heldout"}
    assert set(out["groups"]) == {"all", "split:heldout", "category:panoramas", "category:edits"}
    assert out["summary"]["checks"]["template"]["total"] == len(out["results"])
    assert main(["--state-dir", str(tmp_path / "state"), "agent", "eval", str(SETS / "blind.jsonl"),
                 "--models", str(tmp_path / "missing.json")]) == 1
    assert "cannot read a model library" in capsys.readouterr().err


@pytest.mark.parametrize(("notes", "role", "asked"), [
    # a note that only names a label with the word in it asks for nothing
    (["no label recognised in the prompt: planned with the plain template of the task (text-to-image)"],
     "image", False),
    (["the prompt looks Thai: ... (found: image-to-image)"], "image", False),
    (["no mask was given ...; give it with --input mask=FILE (CLI) or agent.inputs {mask: uploaded name}"],
     "mask", True),
    (["the prompt asks for controlnet_guided (control), which needs input control; none was given, so it "
      "fell back to the text-only txt2img"], "control", True),
    (["... which needs input 'style' (the image whose style to take)"], "style", True),
    (["... which needs input 'style' (the image whose style to take)"], "image", False),
])
def test_a_plans_notes_ask_for_a_role_only_when_they_say_how_to_give_it(notes, role, asked) -> None:
    from agents.evaluate import _asks_role

    assert _asks_role(notes, role) is asked
