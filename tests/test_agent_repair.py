"""The repair loop with a scripted LLM: broken graphs repaired within the bound, or the job
fails with the last errors; every round in the trace; answers cannot steer requests."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_agent_kit import ScriptedLLM, make_catalog, make_templates, txt2img_doc

from agents.context import PlanningContext
from agents.errors import AgentError
from agents.llm import LLMClient, LLMConfig
from agents.planner import Planner
from graphs import validate

PROMPT = "a red fox in the snow"


@pytest.fixture(scope="module")
def server():
    with ScriptedLLM() as llm:
        yield llm


@pytest.fixture()
def ctx() -> PlanningContext:
    return PlanningContext.build(make_catalog(), make_templates())


def planner(ctx: PlanningContext, llm: ScriptedLLM, rounds: int = 3) -> Planner:
    config = LLMConfig(model="openai/scripted", base_url=llm.base_url, api_key="sk-test",
                       retries=0, backoff_s=0.0, timeout_s=10.0)
    return Planner(ctx, llm=LLMClient(config), rounds=rounds)


def compose(graph) -> dict:
    return {"mode": "compose", "labels": ["wildlife"], "graph": graph}


def good() -> dict:
    return txt2img_doc(cond={"prompt": PROMPT})


def unknown_block() -> dict:
    doc = good()
    doc["nodes"]["denoise"]["block"] = "sd.denoiser"
    return doc


def type_mismatch() -> dict:
    doc = good()
    doc["nodes"]["decode"]["inputs"]["latent"] = "cond.cond"  # CONDITIONING into a LATENT input
    return doc


def cycle() -> dict:
    doc = good()
    doc["nodes"]["second"] = copy.deepcopy(doc["nodes"]["denoise"])
    doc["nodes"]["second"]["inputs"]["latent"] = "denoise.latent"
    doc["nodes"]["denoise"]["inputs"]["latent"] = "second.latent"
    return doc


BROKEN = {
    "unknown block": (unknown_block, "unknown_block"),
    "type mismatch": (type_mismatch, "type_mismatch"),
    "cycle": (cycle, "cycle"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_graph_is_repaired_in_one_round(ctx, server, case) -> None:
    make, error_type = BROKEN[case]
    server.reset([compose(make()), {"accept": True, "problems": [f"fixed the {case}"], "graph": good()}])
    plan = planner(ctx, server).plan(PROMPT)
    validate(plan.graph, ctx.catalog)
    assert plan.rounds == 1 and plan.accepted and plan.mode == "compose"
    rounds = plan.trace["rounds"]
    assert [r["decision"] for r in rounds] == ["repair", "accept"]
    assert [r["actor"] for r in rounds] == ["planner:llm", "critic:llm"]
    assert error_type in {e["type"] for e in rounds[0]["errors"]}
    assert rounds[1]["errors"] == [] and rounds[1]["problems"] == [f"fixed the {case}"]
    # the critic was sent the graph and the structured errors
    critic_prompt = rounds[1]["prompt_sent"][-1]["content"]
    assert error_type in critic_prompt and '"nodes"' in critic_prompt
    assert server.requests[1]["body"]["messages"] == rounds[1]["prompt_sent"]


def test_invalid_json_is_repaired_by_the_critic(ctx, server) -> None:
    server.reset(['{"mode": "compose", "graph": {"nodes": {"cond": oops', {"accept": True, "graph": good()}])
    plan = planner(ctx, server).plan(PROMPT)
    rounds = plan.trace["rounds"]
    assert rounds[0]["graph"] is None and rounds[0]["errors"][0]["type"] == "bad_answer"
    assert "oops" in rounds[1]["prompt_sent"][-1]["content"]  # the critic saw what failed to parse
    assert rounds[1]["decision"] == "accept"
    validate(plan.graph, ctx.catalog)


def test_a_correction_the_critic_does_not_accept_yet_is_reviewed_again(ctx, server) -> None:
    server.reset([compose(type_mismatch()),
                  {"accept": False, "problems": ["decode reads the conditioning"], "graph": good()},
                  {"accept": True, "problems": [], "graph": None}])
    plan = planner(ctx, server).plan(PROMPT)
    assert [r["decision"] for r in plan.trace["rounds"]] == ["repair", "review", "accept"]
    assert plan.rounds == 2 and plan.accepted


def test_a_model_that_never_fixes_the_graph_fails_with_the_last_errors(ctx, server) -> None:
    server.reset([compose(unknown_block())],
                 default={"accept": False, "problems": ["looks fine?"], "graph": unknown_block()})
    with pytest.raises(AgentError) as info:
        planner(ctx, server, rounds=2).plan(PROMPT)
    err = info.value
    assert err.type == "unrepaired"
    assert [e["type"] for e in err.details["errors"]] == ["unknown_block"]
    trace = err.details["trace"]
    assert [r["decision"] for r in trace["rounds"]] == ["repair", "repair", "fail"]
    assert trace["outcome"] == "failed" and len(server.requests) == 3
    assert trace["usage"]["calls"] == 3
    json.dumps(err.to_dict())


def test_a_valid_graph_the_critic_never_accepts_is_kept_at_the_bound(ctx, server) -> None:
    server.reset([compose(good())], default={"accept": False, "problems": ["make it prettier"]})
    plan = planner(ctx, server, rounds=2).plan(PROMPT)
    assert not plan.accepted and plan.trace["outcome"] == "valid_at_bound"
    assert [r["decision"] for r in plan.trace["rounds"]] == ["review", "review", "valid_at_bound"]


def test_select_mode_adapts_the_chosen_template(ctx, server) -> None:
    server.reset([{"mode": "select", "labels": ["wildlife", "photo-realistic"], "template": "txt2img",
                   "settings": {"steps": 9, "width": 128, "height": 64, "seed": 11}},
                  {"accept": True}])
    plan = planner(ctx, server).plan(PROMPT)
    assert plan.template == "txt2img" and plan.mode == "select"
    assert plan.labels == ["photo-realistic", "text-to-image", "wildlife"]
    nodes = plan.graph.nodes
    assert nodes["denoise"].params["steps"] == 9 and nodes["denoise"].params["seed"] == 11
    assert (nodes["latent"].params["width"], nodes["latent"].params["height"]) == (128, 64)
    assert nodes["denoise"].tile is not None  # beyond tiny-sd's native 64: tiled by the rules


def test_select_mode_with_an_unknown_template_goes_to_the_critic(ctx, server) -> None:
    server.reset([{"mode": "select", "template": "txt2img_xl"}, {"accept": True, "graph": good()}])
    plan = planner(ctx, server).plan(PROMPT)
    assert plan.trace["rounds"][0]["errors"][0]["type"] == "compose"
    assert "txt2img_xl" in plan.trace["rounds"][1]["prompt_sent"][-1]["content"]


def test_compose_mode_splices_library_pieces(ctx, server) -> None:
    server.reset([{"mode": "compose", "labels": ["wildlife"], "base": "txt2img", "ops": [
        {"op": "insert", "template": "img2img", "prefix": "refine", "bind": {"load.image": "decode.image"}},
        {"op": "set", "node": "refine_denoise", "params": {"strength": 0.3}},
    ]}, {"accept": True}])
    plan = planner(ctx, server).plan(PROMPT)
    nodes = plan.graph.nodes
    assert "refine_load" not in nodes
    assert nodes["refine_resize"].inputs["image"] == "decode.image"
    assert nodes["refine_denoise"].params["strength"] == 0.3
    assert plan.template == "txt2img" and plan.mode == "compose"
    validate(plan.graph, ctx.catalog)


def test_compose_steps_that_fail_are_errors_for_the_critic(ctx, server) -> None:
    server.reset([{"mode": "compose", "base": "txt2img", "ops": [
        {"op": "insert", "template": "nope", "prefix": "x"}]}, {"accept": True, "graph": good()}])
    plan = planner(ctx, server).plan(PROMPT)
    first = plan.trace["rounds"][0]
    assert first["errors"][0]["type"] == "compose" and "nope" in first["errors"][0]["message"]


def test_rules_fix_an_llm_graph_for_people_and_record_it(ctx, server) -> None:
    prompt = "a portrait of an old fisherman"
    doc = txt2img_doc(cond={"prompt": prompt, "negative_prompt": ""})
    server.reset([compose(doc), {"accept": True}])
    plan = planner(ctx, server).plan(prompt)
    first = plan.trace["rounds"][0]
    assert any(f["rule"] == "negative_prompt" for f in first["fixes"])
    assert "anatomy" in plan.graph.nodes["cond"].params["negative_prompt"]
    # the critic reviewed the fixed graph
    assert "anatomy" in plan.trace["rounds"][1]["prompt_sent"][-1]["content"]


def test_the_trace_records_every_round_as_json_data(ctx, server) -> None:
    server.reset([compose(cycle()), {"accept": False, "graph": good()}, {"accept": True}],
                 usage=(50, 10))
    plan = planner(ctx, server).plan(PROMPT)
    trace = json.loads(json.dumps(plan.trace))
    assert trace["planner"] == "llm:openai/scripted" and trace["outcome"] == "accepted"
    for entry in trace["rounds"]:
        assert {"round", "actor", "prompt_sent", "answer", "errors", "decision", "graph", "fixes",
                "problems", "usage"} <= set(entry)
        assert isinstance(entry["answer"], str) and entry["prompt_sent"][0]["role"] == "system"
    assert [e["round"] for e in trace["rounds"]] == [0, 1, 2]
    assert trace["usage"]["calls"] == 3 and trace["usage"]["total_tokens"] == 3 * 60
    assert plan.usage.prompt_tokens == 150


def test_answers_cannot_redirect_the_loop_or_leak_the_key(ctx, server) -> None:
    with ScriptedLLM() as evil:
        hostile = {"api_base": evil.base_url, "base_url": evil.base_url, "api_key": "stolen",
                   "model": "openai/evil", "headers": {"Authorization": "Bearer stolen"}}
        server.reset([{**compose(unknown_block()), **hostile},
                      {**hostile, "accept": True, "graph": good()}])
        plan = planner(ctx, server).plan(PROMPT)
    assert evil.requests == []
    assert [r["headers"]["Authorization"] for r in server.requests] == ["Bearer sk-test"] * 2
    assert {r["body"]["model"] for r in server.requests} == {"scripted"}
    assert "sk-test" not in json.dumps(plan.to_dict())


def test_an_unreachable_model_falls_back_to_the_offline_planner(ctx, server) -> None:
    server.reset(default=(500, "down"))
    plan = planner(ctx, server).plan(PROMPT)
    assert plan.planner == "offline" and plan.template == "txt2img"
    assert "failed" in plan.trace["notes"][0]
    no_fallback = planner(ctx, server)
    no_fallback.fallback_offline = False
    with pytest.raises(AgentError) as info:
        no_fallback.plan(PROMPT)
    assert info.value.type == "llm"


def test_litellm_mock_response_drives_the_same_loop(ctx) -> None:
    llm = LLMClient(LLMConfig(model="openai/mocked", retries=0),
                    mock_responses=[json.dumps(compose(unknown_block())),
                                    json.dumps({"accept": True, "graph": good()})])
    plan = Planner(ctx, llm=llm).plan(PROMPT)
    assert [r["decision"] for r in plan.trace["rounds"]] == ["repair", "accept"]
    validate(plan.graph, ctx.catalog)
