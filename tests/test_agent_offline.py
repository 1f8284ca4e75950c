"""The offline planner: labels by keyword rules, a template from the score table, adapted."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_agent_kit import make_catalog, make_templates

from agents.context import PlanningContext
from agents.errors import AgentError
from agents.planner import Planner
from agents.scores import ScoreTable
from agents.sizes import output_size
from graphs import Graph, Template, validate


@pytest.fixture()
def ctx() -> PlanningContext:
    return PlanningContext.build(make_catalog(), make_templates(), scores=ScoreTable())


EXPECTED = [
    ("a red fox in the snow", "txt2img", {"wildlife"}),
    ("a wide panorama of a mountain lake at dawn", "panorama", {"landscapes", "wide"}),
    ("a panoramic view of the city skyline at night, 21:9", "panorama", {"urban", "wide"}),
    ("portrait of an old fisherman, oil painting, highly detailed", "hires_fix",
     {"people", "painting", "detailed"}),
    ("a huge image of tokyo at night, neon", "hires_fix", {"urban", "large"}),
    ("a bowl of ramen, food photography", "txt2img", {"food", "photo-realistic"}),
    ("a golden retriever puppy playing in a garden, watercolor", "txt2img",
     {"animals", "nature", "painting"}),
    ("turn this photo into an anime drawing", "img2img", {"anime", "image-to-image"}),
    ("remove the car from this photo", "inpaint", {"objects", "inpaint"}),
]


@pytest.mark.parametrize(("prompt", "template", "labels"), EXPECTED)
def test_offline_planner_picks_the_expected_template(ctx, prompt, template, labels) -> None:
    images = {"image-to-image": {"image": "in.png"}, "inpaint": {"image": "in.png", "mask": "m.png"}}
    plan = Planner(ctx).plan(prompt, images=next((v for k, v in images.items() if k in labels), None))
    assert plan.template == template
    assert labels <= set(plan.labels)
    assert plan.planner == "offline" and plan.mode == "select" and plan.accepted
    validate(plan.graph, ctx.catalog)
    json.dumps(plan.to_dict())  # the whole plan, trace included, is plain JSON data


def test_a_wide_prompt_gets_a_wide_tiled_graph(ctx) -> None:
    plan = Planner(ctx).plan("a wide panorama of a mountain lake at dawn")
    assert output_size(plan.graph) == (256, 64)  # 4:1 at tiny-sd's native 64 px
    assert plan.graph.nodes["denoise"].tile is not None
    assert plan.graph.nodes["cond"].params["prompt"] == "a wide panorama of a mountain lake at dawn"


def test_without_a_tiled_template_the_rules_add_tiling_beyond_native_size() -> None:
    ctx = PlanningContext.build(make_catalog(), make_templates(panorama=False))
    plan = Planner(ctx).plan("a wide panorama of a mountain lake at dawn")
    assert plan.template in ("txt2img", "hires_fix")
    assert output_size(plan.graph) == (256, 64)
    tiled = {n for n, node in plan.graph.nodes.items() if node.tile is not None}
    assert {"denoise", "decode"} <= tiled
    assert all(plan.graph.nodes[n].tile.size == 64 for n in tiled)
    changes = plan.trace["rounds"][0]["answer"]["changes"]
    assert any(c.get("rule") == "tiling" for c in changes)
    validate(plan.graph, ctx.catalog)


def test_size_seed_steps_and_things_to_avoid_come_from_the_prompt(ctx) -> None:
    plan = Planner(ctx).plan("a red fox in the snow, 1024x512, seed 42, 30 steps, without text")
    nodes = plan.graph.nodes
    assert (nodes["latent"].params["width"], nodes["latent"].params["height"]) == (1024, 512)
    assert nodes["denoise"].params["seed"] == 42 and nodes["denoise"].params["steps"] == 30
    assert nodes["cond"].params["prompt"] == "a red fox in the snow"
    assert "text" in nodes["cond"].params["negative_prompt"]
    assert nodes["save"].params["name"] == "a-red-fox-in-the-snow"


def test_people_get_a_negative_prompt(ctx) -> None:
    plan = Planner(ctx).plan("a photo of a woman reading in a cafe")
    assert "people" in plan.labels
    assert "anatomy" in plan.graph.nodes["cond"].params["negative_prompt"]


def test_an_unknown_model_in_a_template_is_replaced_by_a_known_one() -> None:
    templates = make_templates(panorama=False)
    doc = templates["txt2img"].graph.to_dict()
    for node in doc["nodes"].values():
        if "model" in node.get("params", {}):
            node["params"]["model"] = "no-such-model"
    graph = Graph.from_dict(doc)
    templates = {"txt2img": Template("txt2img", "t", templates["txt2img"].labels, graph)}
    ctx = PlanningContext.build(make_catalog(), templates)
    plan = Planner(ctx).plan("a red fox")
    models = {n.params["model"] for n in plan.graph.nodes.values() if "model" in n.params}
    assert models == {"tiny-sd"}


def test_planning_is_deterministic_and_leaves_the_templates_alone(ctx) -> None:
    before = {n: t.graph.to_dict() for n, t in ctx.templates.items()}
    a = Planner(ctx).plan("a red fox in the snow")
    b = Planner(ctx).plan("a red fox in the snow")
    assert a.graph == b.graph
    assert {n: t.graph.to_dict() for n, t in ctx.templates.items()} == before
    assert Planner(ctx).plan("a red fox in the snow", seed=5).graph.nodes["denoise"].params["seed"] == 5


def test_input_images_and_a_forced_template(ctx) -> None:
    plan = Planner(ctx).plan("make my sketch look like a watercolor",
                             images={"image": "sketch.png"})
    assert plan.template == "img2img"
    assert plan.graph.nodes["load"].params["path"] == "sketch.png"
    forced = Planner(ctx).plan("a red fox", template="hires_fix", width=128, height=64)
    assert forced.template == "hires_fix" and output_size(forced.graph) == (128, 64)
    with pytest.raises(AgentError) as info:
        Planner(ctx).plan("a red fox", template="nope")
    assert info.value.type == "config"


def test_an_empty_library_or_prompt_is_a_config_error() -> None:
    with pytest.raises(AgentError) as info:
        Planner(PlanningContext.build(make_catalog(), {})).plan("a red fox")
    assert info.value.type == "config"
    with pytest.raises(AgentError):
        Planner(PlanningContext.build(make_catalog(), make_templates())).plan("  ")


def test_scored_jobs_change_the_offline_choice(ctx) -> None:
    planner = Planner(ctx)
    first = planner.plan("a red fox in the snow")
    assert first.template == "txt2img"
    for _ in range(4):
        ctx.scores.record("a fox", ["wildlife", "text-to-image"], "txt2img", first.graph.to_dict(), 0.2)
        ctx.scores.record("a wolf", ["wildlife", "text-to-image"], "hires_fix", {"nodes": {}}, 0.9)
    second = planner.plan("a red fox in the snow")
    assert second.template == "hires_fix"
    ranking = second.trace["ranking"]
    assert ranking[0]["template"] == "hires_fix" and ranking[0]["labels"]["wildlife"] > 0.6


def test_the_offline_planner_repairs_a_template_the_catalog_has_moved_away_from() -> None:
    templates = make_templates(panorama=False)
    doc = templates["txt2img"].graph.to_dict()
    doc["nodes"]["latent"]["params"]["seed"] = 7  # a param the block no longer takes
    doc["nodes"]["denoise"]["params"]["steps"] = 5000  # beyond the bound
    graph = Graph.from_dict(doc)
    ctx = PlanningContext.build(make_catalog(), {"txt2img": Template("txt2img", "", {}, graph)})
    plan = Planner(ctx).plan("a red fox")
    assert plan.rounds == 1
    assert "seed" not in plan.graph.nodes["latent"].params
    assert plan.graph.nodes["denoise"].params["steps"] == 1000
    rounds = plan.trace["rounds"]
    assert [r["decision"] for r in rounds] == ["repair", "accept"]
    assert {e["type"] for e in rounds[0]["errors"]} == {"invalid_param"}


def test_with_the_real_catalog_and_library_the_offline_plans_validate() -> None:
    from orchestrator.plugins import load_plugins

    host = load_plugins(entry_points=False)
    ctx = PlanningContext.build(host.catalog, host.templates)
    planner = Planner(ctx)
    for prompt in ("a wide panorama of a mountain lake at dawn", "a red fox in the snow",
                   "portrait of an old fisherman, oil painting", "a 4k poster of tokyo at night"):
        try:
            plan = planner.plan(prompt)
        except AgentError as exc:
            pytest.fail(f"{prompt!r}: {exc.to_dict()['errors']}")
        validate(plan.graph, host.catalog)
