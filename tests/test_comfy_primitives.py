"""ComfyUI's core primitive, string, math and switch nodes are computed at import.

Each expected value is what ComfyUI's node computes (comfy_extras/nodes_string.py,
nodes_logic.py, nodes_math.py); the result reaches the widget that reads it.
"""

from __future__ import annotations

import pytest
from tests_comfy_helpers import text_workflow

from graphs.comfy import import_result
from graphs.comfy.primitives import MAX_EXPRESSION, ExpressionError, evaluate
from orchestrator.plugins import builtin_comfy_mappings

COMFY_MAPPINGS = builtin_comfy_mappings()  # the built-in plugins' ComfyUI mappings


def prompt_of(result) -> str:
    return next(n.params["prompt"] for n in result.graph.nodes.values() if n.block == "sd.encode_prompt")


@pytest.mark.parametrize(("class_type", "inputs", "expected"), [
    ("StringConcatenate", {"string_a": "a fox", "string_b": "snow", "delimiter": " in "}, "a fox in snow"),
    ("StringSubstring", {"string": "a red fox", "start": 2, "end": -4}, "red"),
    ("CaseConverter", {"string": "a red fox", "mode": "Title Case"}, "A Red Fox"),
    ("CaseConverter", {"string": "a red fox", "mode": "UPPERCASE"}, "A RED FOX"),
    ("StringTrim", {"string": "  fox  ", "mode": "Left"}, "fox  "),
    ("StringReplace", {"string": "red fox, red sky", "find": "red", "replace": "blue"}, "blue fox, blue sky"),
    ("RegexExtract", {"string": "fox-12 and cat-7", "regex_pattern": r"(\w+)-(\d+)", "mode": "All Groups",
                      "case_insensitive": True, "multiline": False, "dotall": False, "group_index": 2},
     "12\n7"),
    ("RegexExtract", {"string": "Fox fox", "regex_pattern": "fox", "mode": "All Matches",
                      "case_insensitive": False, "multiline": False, "dotall": False, "group_index": 1},
     "fox"),
    ("RegexExtract", {"string": "fox", "regex_pattern": "(", "mode": "First Match"}, ""),  # bad pattern: ""
    ("RegexReplace", {"string": "Red fox, red sky", "regex_pattern": "red", "replace": "blue",
                      "case_insensitive": True, "multiline": False, "dotall": False, "count": 1},
     "blue fox, red sky"),
])
def test_string_nodes_compute_as_comfyui(class_type, inputs, expected, catalog):
    result = import_result(text_workflow({"class_type": class_type, "inputs": inputs}), catalog=catalog,
                           model_map={"sd15": "tiny-sd"}, extra_mappings=COMFY_MAPPINGS)
    assert result.errors == []
    assert prompt_of(result) == expected


@pytest.mark.parametrize(("class_type", "inputs", "expected"), [
    ("StringContains", {"string": "A Red Fox", "substring": "red fox", "case_sensitive": False}, True),
    ("StringContains", {"string": "A Red Fox", "substring": "red fox", "case_sensitive": True}, False),
    ("StringCompare", {"string_a": "fox.png", "string_b": ".PNG", "mode": "Ends With",
                       "case_sensitive": False}, True),
    ("RegexMatch", {"string": "fox", "regex_pattern": "^F", "case_insensitive": True, "multiline": False,
                    "dotall": False}, True),
])
def test_boolean_nodes_drive_a_switch(class_type, inputs, expected, catalog):
    """A boolean from a string node picks the switch's input: which prompt reaches the encoder."""
    wf = text_workflow(["20", 0])
    wf["21"] = {"class_type": class_type, "inputs": inputs}
    wf["22"] = {"class_type": "PrimitiveString", "inputs": {"value": "picked when true"}}
    wf["23"] = {"class_type": "PrimitiveStringMultiline", "inputs": {"value": "picked when false"}}
    wf["20"] = {"class_type": "ComfySwitchNode",
                "inputs": {"switch": ["21", 0], "on_true": ["22", 0], "on_false": ["23", 0]}}
    result = import_result(wf, catalog=catalog, model_map={"sd15": "tiny-sd"}, extra_mappings=COMFY_MAPPINGS)
    assert result.errors == []
    assert prompt_of(result) == ("picked when true" if expected else "picked when false")


def test_a_switch_passes_on_any_type_and_the_connected_input(catalog):
    wf = text_workflow("a fox")
    wf["30"] = {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 96, "batch_size": 1}}
    wf["31"] = {"class_type": "ComfySwitchNode", "inputs": {"switch": True, "on_false": ["30", 0]}}
    wf["3"]["inputs"]["latent_image"] = ["31", 0]  # on_true is not connected: on_false is passed on
    result = import_result(wf, catalog=catalog, model_map={"sd15": "tiny-sd"}, extra_mappings=COMFY_MAPPINGS)
    assert result.errors == []
    latents = [n for n in result.graph.nodes.values() if n.block == "sd.empty_latent"]
    assert [(n.params["width"], n.params["height"]) for n in latents] == [(64, 96)]


@pytest.mark.parametrize(("expression", "values", "expected"), [
    ("a + b", {"a": 512, "b": 256}, 768),
    ("(a + b) / 2", {"a": 512, "b": 256}, 384),  # integral result of int inputs: INT
    ("a * 1.5", {"a": 512}, 768),
    ("$round(a / 3, 2)", {"a": 10.0}, 3.33),
    ("$max(a, b, 64) % 7", {"a": 50, "b": 9}, 1),
    ("a > b ? a : b", {"a": 3, "b": 9}, 9),
    ("values[1] - values[0]", {"a": 3, "b": 10}, 7),
    ("$floor($sqrt(a)) * 8", {"a": 70}, 64),
])
def test_math_expression(expression, values, expected, catalog):
    wf = text_workflow("a fox")
    inputs = {"expression": expression, **{f"values.{k}": v for k, v in values.items()}}
    wf["40"] = {"class_type": "ComfyMathExpression", "inputs": inputs}
    wf["3"]["inputs"]["cfg"] = ["40", 0]
    result = import_result(wf, catalog=catalog, model_map={"sd15": "tiny-sd"}, extra_mappings=COMFY_MAPPINGS)
    sampler = next(n for n in result.graph.nodes.values() if n.meta["comfy"]["class_type"] == "KSampler")
    assert sampler.params["cfg"] == pytest.approx(expected)


@pytest.mark.parametrize(("expression", "message"), [
    ("a +", "unexpected end"), ("$eval(1)", "not supported"), ("a / 0", "division by zero"),
    ("__import__", "not an input"), ("(" * 200 + "1" + ")" * 200, "nested too deeply"),
    ("1" * (MAX_EXPRESSION + 1), "longer than"), ("$power(10, 400)", "power"),
    ("a; b", "unexpected character"),
])
def test_math_expressions_refused(expression, message):
    with pytest.raises(ExpressionError, match=message):
        evaluate(expression, {"a": 1.0, "b": 2.0})


def test_values_not_known_at_import_or_hostile_are_errors_that_name_the_node(catalog):
    wf = text_workflow(["50", 0])
    wf["51"] = {"class_type": "LoadImage", "inputs": {"image": "x.png"}}
    wf["50"] = {"class_type": "StringConcatenate", "inputs": {"string_a": ["51", 0], "string_b": "x"}}
    result = import_result(wf, catalog=catalog, model_map={"sd15": "tiny-sd"}, extra_mappings=COMFY_MAPPINGS)
    error = next(p.to_dict() for p in result.errors if p.to_dict()["node"] == "50")
    assert error["type"] == "dropped_node" and error["field"] == "string_a"
    assert "known only" in error["message"]

    hostile = {
        "60": ("RegexReplace", {"string": "a" * 60 + "b", "regex_pattern": "(a|aa)+$", "replace": ""},
               "regex_pattern", "took over"),
        "61": ("RegexReplace", {"string": "x", "regex_pattern": "(", "replace": ""}, "regex_pattern",
               "not a valid"),
        "62": ("StringSubstring", {"string": "fox", "start": "1", "end": 2}, "start", "not of type int"),
        "63": ("StringConcatenate", {"string_a": {"nested": 1}, "string_b": "x"}, "string_a",
               "not of type str"),
        "64": ("ComfySwitchNode", {"switch": True}, "on_true", "must be connected"),
        "65": ("ComfyMathExpression", {"expression": "a +* b", "values.a": 1, "values.b": 2}, "expression",
               "expression"),
    }
    for node, (class_type, inputs, field, words) in hostile.items():
        wf = text_workflow([node, 0])
        wf[node] = {"class_type": class_type, "inputs": inputs}
        result = import_result(wf, catalog=catalog, model_map={"sd15": "tiny-sd"},
                               extra_mappings=COMFY_MAPPINGS)
        found = [p.to_dict() for p in result.errors if p.to_dict()["node"] == node]
        assert found, (node, [p.to_dict() for p in result.problems])
        assert found[0]["field"] == field and words in found[0]["message"], found[0]


def test_ui_primitive_nodes_feed_string_nodes(catalog):
    """The front end's PrimitiveNode (UI only) and a widget converted to an input."""
    ui = {"nodes": [
        {"id": 1, "type": "PrimitiveNode", "mode": 0, "widgets_values": ["a cat"],
         "outputs": [{"name": "STRING", "type": "STRING", "links": [1]}]},
        {"id": 2, "type": "StringReplace", "mode": 0, "widgets_values": ["", "cat", "fox"],
         "inputs": [{"name": "string", "type": "STRING", "widget": {"name": "string"}, "link": 1}],
         "outputs": [{"name": "STRING", "type": "STRING", "links": [2]}]},
        {"id": 4, "type": "CheckpointLoaderSimple", "mode": 0, "widgets_values": ["sd15.safetensors"]},
        {"id": 6, "type": "CLIPTextEncode", "mode": 0, "widgets_values": [""],
         "inputs": [{"name": "clip", "type": "CLIP", "link": 3},
                    {"name": "text", "type": "STRING", "widget": {"name": "text"}, "link": 2}]},
        {"id": 7, "type": "CLIPTextEncode", "mode": 0, "widgets_values": ["blurry"],
         "inputs": [{"name": "clip", "type": "CLIP", "link": 4}]},
        {"id": 5, "type": "EmptyLatentImage", "mode": 0, "widgets_values": [64, 64, 1]},
        {"id": 3, "type": "KSampler", "mode": 0, "widgets_values": [1, "fixed", 2, 7, "euler", "normal", 1],
         "inputs": [{"name": "model", "link": 5}, {"name": "positive", "link": 6},
                    {"name": "negative", "link": 7}, {"name": "latent_image", "link": 8}]},
        {"id": 8, "type": "VAEDecode", "mode": 0, "inputs": [{"name": "samples", "link": 9},
                                                          {"name": "vae", "link": 10}]},
        {"id": 9, "type": "SaveImage", "mode": 0, "widgets_values": ["fox"], "inputs": [{"name": "images",
                                                                                         "link": 11}]}],
        "links": [[1, 1, 0, 2, 0, "STRING"], [2, 2, 0, 6, 1, "STRING"], [3, 4, 1, 6, 0, "CLIP"],
                  [4, 4, 1, 7, 0, "CLIP"], [5, 4, 0, 3, 0, "MODEL"], [6, 6, 0, 3, 1, "CONDITIONING"],
                  [7, 7, 0, 3, 2, "CONDITIONING"], [8, 5, 0, 3, 3, "LATENT"], [9, 3, 0, 8, 0, "LATENT"],
                  [10, 4, 2, 8, 1, "VAE"], [11, 8, 0, 9, 0, "IMAGE"]]}
    result = import_result(ui, catalog=catalog, model_map={"sd15": "tiny-sd"}, extra_mappings=COMFY_MAPPINGS)
    assert result.errors == []
    assert prompt_of(result) == "a fox"


def test_hostile_growth_and_regex_time_are_bounded(catalog):
    """A chain of string doublings stops at MAX_STRING; regular expressions share one time budget."""
    from graphs.comfy.primitives import MAX_STRING, REGEX_BUDGET_S

    wf = text_workflow(["99", 0])
    wf["100"] = {"class_type": "PrimitiveString", "inputs": {"value": "ab" * 32}}
    previous = "100"
    for k in range(101, 140):  # 64 * 2**39 characters if nothing stopped it
        wf[str(k)] = {"class_type": "StringConcatenate",
                      "inputs": {"string_a": [previous, 0], "string_b": [previous, 0], "delimiter": ""}}
        previous = str(k)
    wf["99"] = {"class_type": "StringReplace",
                "inputs": {"string": [previous, 0], "find": "a", "replace": "b"}}
    result = import_result(wf, catalog=catalog, model_map={"sd15": "tiny-sd"}, extra_mappings=COMFY_MAPPINGS)
    stopped = [p.to_dict() for p in result.errors if "over the" in p.message]
    assert len(stopped) == 1 and str(MAX_STRING) in stopped[0]["message"]
    wf = text_workflow(["99", 0])
    wf["99"] = {"class_type": "StringReplace",
                "inputs": {"string": "x" * 1000, "find": "", "replace": "y" * 2000}}
    assert any("over the" in p.message for p in import_result(wf, catalog=catalog,
                                                              extra_mappings=COMFY_MAPPINGS).errors)

    wf = text_workflow(["200", 0])  # three samplers, each with a catastrophic pattern in its prompt
    for k, save in enumerate(("3", "13", "23")):
        regex_node = str(200 + k)
        wf[regex_node] = {"class_type": "RegexReplace", "inputs": {
            "string": "a" * 60 + "b", "regex_pattern": "(a|aa)+$", "replace": ""}}
        if save != "3":
            n = int(save)
            wf[str(n + 3)] = {"class_type": "CLIPTextEncode",
                              "inputs": {"text": [regex_node, 0], "clip": ["4", 1]}}
            wf[save] = {"class_type": "KSampler",
                        "inputs": {**wf["3"]["inputs"], "positive": [str(n + 3), 0]}}
            wf[str(n + 5)] = {"class_type": "VAEDecode", "inputs": {"samples": [save, 0], "vae": ["4", 2]}}
            wf[str(n + 6)] = {"class_type": "SaveImage", "inputs": {"images": [str(n + 5), 0]}}
    result = import_result(wf, catalog=catalog, model_map={"sd15": "tiny-sd"}, extra_mappings=COMFY_MAPPINGS)
    messages = sorted(p.message for p in result.errors if p.node in ("200", "201", "202"))
    assert len(messages) == 3, messages  # the third (at least) was not run at all: the budget was spent
    assert sum(f"over {REGEX_BUDGET_S:g} s in all" in m for m in messages) >= 1


def test_math_results_past_int64_become_floats(catalog):
    wf = text_workflow("a fox")
    wf["40"] = {"class_type": "ComfyMathExpression", "inputs": {"expression": "a * a * a", "values.a": 2**40}}
    wf["41"] = {"class_type": "ComfyMathExpression", "inputs": {"expression": "a * 0", "values.a": ["40", 0]}}
    wf["3"]["inputs"]["cfg"] = ["41", 0]
    result = import_result(wf, catalog=catalog, model_map={"sd15": "tiny-sd"}, extra_mappings=COMFY_MAPPINGS)
    sampler = next(n for n in result.graph.nodes.values() if n.meta["comfy"]["class_type"] == "KSampler")
    assert sampler.params["cfg"] == 0.0
