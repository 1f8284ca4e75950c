"""How the offline planner reads phrasings it first missed: a given picture named with any
picture noun, orientation words a word or two from their noun and paper sizes, and the line
between a plain picture of some aspect and a panorama."""

from __future__ import annotations

import math

import pytest

from agents.choose import PANORAMA_FROM, shape_formats
from agents.context import PlanningContext, models_from_entries
from agents.errors import AgentError
from agents.labels import Labels, classify
from agents.planner import Planner
from agents.request import paper_aspect, parse_request
from agents.sizes import output_size

SD1 = {"name": "dreamy-sd15", "kind": "checkpoint", "family": "sd1", "origin": "folder"}


@pytest.fixture(scope="module")
def planner() -> Planner:
    from orchestrator.plugins import load_plugins

    host = load_plugins()
    return Planner(PlanningContext.build(host.catalog, host.templates, models=models_from_entries([SD1])))


# -- 1. a given picture, whatever the user calls it -------------------------------------------------

GIVEN = [
    "fix the face in this portrait, it looks blurry",
    "make this painting look like winter",
    "turn my headshot into a watercolour",
    "the render I attached, make it night time",
    "here's my logo, make it look embossed in gold",
    "here is a still from my film, make it look like anime",
    "recolour the one I uploaded in warm tones",
    "see attached, make it a pencil sketch",
    "a photo from my camera roll, make it cinematic",
    "make my selfie look like a pixar character",
    "brighten this shot of the harbour",
    "this line art, in the style of a comic book",
    "give the illustration I sent a sunset sky",
]
TEXT = [
    "a portrait of a woman in a red hat",
    "portrait of an old fisherman, oil painting",
    "an oil painting of a harbour at dusk",
    "a logo for a coffee shop, flat design",
    "a film still of a detective in the rain",
    "here is a still life of fruit in a bowl",
    "design my logo: a coffee cup with steam, flat design",
    "a headshot of a smiling businessman, studio lighting",
]


@pytest.mark.parametrize("prompt", GIVEN)
def test_a_picture_the_prompt_points_at_is_an_input(prompt: str) -> None:
    labels = classify(prompt)  # a given line art is a control map ("this line art, in the style of ...")
    assert labels.task in ("image-to-image", "inpaint") or "control" in labels.intents, prompt


@pytest.mark.parametrize("prompt", TEXT)
def test_a_picture_noun_without_a_pointer_stays_a_text_prompt(prompt: str) -> None:
    assert classify(prompt).task == "text-to-image", prompt


def test_a_named_picture_keeps_its_style_and_subject_labels() -> None:
    labels = classify("paint my photo in the style of this van gogh painting")
    assert "painting" in labels.styles
    assert "people" in classify("apply the style of the second image to my portrait").subjects


def test_the_planner_asks_for_the_portrait_it_is_told_to_fix(planner: Planner) -> None:
    with pytest.raises(AgentError) as info:
        planner.plan("fix the face in this portrait, it looks blurry")
    err = info.value.to_dict()
    assert err["type"] == "input" and err["field"] == "inputs.image" and "image" in err["roles"]
    assert planner.plan("a portrait of a woman, it looks blurry").template in ("txt2img", "hires_fix")


# -- 2. orientation words apart from their noun, paper sizes ------------------------------------------


@pytest.mark.parametrize(("prompt", "low", "high"), [
    ("retro travel poster of Lisbon trams, vertical A3 poster", 0.6, 0.8),
    ("a landscape-oriented travel poster of the alps", 1.3, 1.6),
    ("a horizontal 16:9-ish banner of a city at night", 1.7, 1.8),
    ("a vertical cinema poster of a spaceship", 0.6, 0.7),
    ("a portrait-oriented book cover of a forest", 0.6, 0.7),
    ("an A4 landscape print of a harbour", 1.4, 1.42),
    ("a letter-size flyer for a bake sale", 0.77, 0.78),
    ("a tabloid poster of a rock band", 0.64, 0.65),
    ("a phone wallpaper of a waterfall, vertical", 0.55, 0.57),
])
def test_orientation_and_paper_set_the_aspect(prompt: str, low: float, high: float) -> None:
    req = parse_request(prompt)
    assert req.aspect is not None and low <= req.aspect <= high, (prompt, req.aspect)
    assert ("tall" if req.aspect < 1 else "wide") in req.labels.formats


def test_paper_sizes() -> None:
    assert math.isclose(paper_aspect("an A3 poster"), 1 / math.sqrt(2))
    assert math.isclose(paper_aspect("an A3 poster, landscape"), math.sqrt(2))
    assert paper_aspect("a letter on a desk by a window") is None  # a letter, not a paper size
    assert paper_aspect("an audi A4 on a mountain road") is None
    assert paper_aspect("a red fox in the snow") is None


# -- 3. a plain picture of some aspect or a panorama ----------------------------------------------------


@pytest.mark.parametrize(("prompt", "template", "aspect"), [
    ("brutalist library interior, 16:9", "txt2img", 16 / 9),
    ("a lighthouse, portrait orientation, 768x1152", "txt2img", 2 / 3),  # one pass at the asked size
    ("a lighthouse, portrait orientation, 512x768", "txt2img", 2 / 3),
    ("a red fox in the snow, 3:2", "txt2img", 1.5),
    ("a banner of a neon city skyline, 21:9", "panorama", 21 / 9),
    ("a sweeping 5:1 vista of rice terraces", "panorama", 5.0),
    ("a tall vertical banner of a bamboo forest, 1:3", "panorama", 1 / 3),
    ("a 16:9 panorama of a mountain lake", "panorama", 16 / 9),
])
def test_panorama_only_from_two_to_one_or_when_named(planner: Planner, prompt: str, template: str,
                                                    aspect: float) -> None:
    plan = planner.plan(prompt)
    assert plan.template == template, (prompt, plan.template)
    w, h = output_size(plan.graph)
    assert abs(w / h - aspect) / aspect < 0.1, (prompt, w, h)


def test_shape_formats_by_aspect() -> None:
    assert shape_formats(Labels(formats=["wide"], aspect=16 / 9)) == set()
    assert shape_formats(Labels(formats=["tall", "large"], aspect=0.75)) == {"large"}
    assert shape_formats(Labels(formats=["wide"], aspect=PANORAMA_FROM)) == {"wide"}
    assert shape_formats(Labels(formats=["tall"], aspect=1 / 3)) == {"tall"}
    assert shape_formats(Labels(formats=["wide"])) == {"wide"}  # no aspect given: a panorama word


@pytest.mark.parametrize("prompt", ["studio portrait, 85mm lens, shallow depth of field",
                                    "macro shot of a bee, shallow depth"])
def test_depth_of_field_is_photography_not_a_depth_map(prompt):
    from agents.labels import classify

    assert "depth" not in classify(prompt).intents
