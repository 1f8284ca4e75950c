"""Prompt labels by keyword rules (and an injected embedding model), and what a prompt asks for."""

from __future__ import annotations

import pytest

from agents.embeddings import local_embedder
from agents.labels import DESCRIPTIONS, Labels, classify
from agents.request import clean_prompt, parse_request


@pytest.mark.parametrize(("prompt", "subjects", "styles", "formats", "task"), [
    ("a red fox in the snow", ["wildlife"], [], [], "text-to-image"),
    ("portrait of an old fisherman, oil painting", ["people"], ["painting"], [], "text-to-image"),
    ("a wide panorama of a mountain lake at dawn", ["landscapes"], [], ["wide"], "text-to-image"),
    ("a 4k poster of tokyo at night", ["urban"], [], [], "text-to-image"),  # "4k": a quality tag
    ("phone wallpaper of a waterfall in a jungle, vertical", ["nature"], [], ["tall"],
     "text-to-image"),
    ("anime girl with a cat, manga style", ["people", "animals"], ["anime"], [], "text-to-image"),
    ("turn this photo into an anime drawing", [], ["illustration", "anime"], [], "image-to-image"),
    ("remove the car from this photo", ["objects"], ["edit"], [], "inpaint"),
    ("a bowl of ramen, food photography, highly detailed", ["food"],
     ["photo-realistic", "detailed"], [], "text-to-image"),
])
def test_keyword_rules(prompt, subjects, styles, formats, task) -> None:
    labels = classify(prompt)
    assert labels.subjects == subjects
    assert labels.styles == styles
    assert sorted(labels.formats) == sorted(formats)
    assert labels.task == task


def test_words_inside_other_words_do_not_count() -> None:
    assert classify("a catalogue of scattered manhole covers").subjects == []
    assert classify("a tall man walking").formats == []  # a tall man is not a tall image


def test_labels_round_trip_through_a_flat_list() -> None:
    labels = Labels.from_list(["Wildlife", "painting", "wide", "inpaint", "dragons"])
    assert labels.to_dict() == {"subjects": ["wildlife", "dragons"], "styles": ["painting"],
                                "formats": ["wide"], "task": "inpaint", "intents": []}
    assert labels.all() == ["dragons", "inpaint", "painting", "wide", "wildlife"]


def test_an_embedding_model_adds_labels_the_keywords_miss() -> None:
    names = list(DESCRIPTIONS)

    def embed(texts: list[str]) -> list[list[float]]:
        # a fake model: the prompt is close to the "food" and "painting" descriptions only
        out = []
        for text in texts:
            if text in DESCRIPTIONS.values():
                name = names[list(DESCRIPTIONS.values()).index(text)]
                out.append([1.0 if n == name else 0.0 for n in names])
            else:
                out.append([1.0 if n in ("food", "painting") else 0.0 for n in names])
        return out

    labels = classify("a still of something delicious by Caravaggio", embedder=embed)
    assert "food" in labels.subjects and "painting" in labels.styles


def test_no_local_embedding_model_means_none_and_no_download(tmp_path) -> None:
    assert local_embedder(None) is None
    assert local_embedder(tmp_path / "missing") is None
    assert local_embedder("sentence-transformers/not-in-the-local-cache") is None


def test_parse_request_reads_size_ratio_seed_steps_quality_and_avoid() -> None:
    r = parse_request("a castle, 1024x768, seed: 9, 25 steps, without people, avoid text")
    assert (r.width, r.height, r.seed, r.steps) == (1024, 768, 9, 25)
    assert r.avoid == ["people", "text"]
    assert r.text == "a castle"
    assert parse_request("a city street, 16:9").aspect == pytest.approx(16 / 9)
    assert parse_request("a tall image of a lighthouse, vertical").aspect == 0.5
    assert parse_request("a quick draft of a dog").quality == "fast"
    assert parse_request("a masterpiece, highly detailed dragon").quality == "quality"
    assert parse_request("a red fox").default_seed() == parse_request("a red fox").default_seed()
    assert clean_prompt("1024x512") == "1024x512"  # never empty


@pytest.mark.parametrize(("prompt", "task", "intents"), [
    ("remvoe the dog from this foto", "inpaint", []),
    ("a remote cabin, like this photo", "image-to-image", []),
    ("turn the attached selfie into a marble statue", "image-to-image", []),
    ("get rid of the power lines in this photo (mask attached)", "inpaint", []),
    ("paint my photo in the style of this van gogh painting", "image-to-image", ["style"]),
    ("a painting in the style of van gogh", "text-to-image", []),
    ("a portrait of a violinist, then fix the face with a detail pass", "text-to-image", ["detail"]),
    ("generate a futuristic car following this edge map", "text-to-image", ["control"]),
    ("use the depth map of this room for a cyberpunk bar", "image-to-image", ["depth"]),
    ("a castle at the top of a hill", "text-to-image", []),
    ("a red fox at the top and a white owl at the bottom", "text-to-image", ["regions"]),
    ("extend the background of this picture to the left", "inpaint", ["outpaint"]),  # an outpainting
])
def test_tasks_and_intents(prompt, task, intents) -> None:
    labels = classify(prompt)
    assert (labels.task, labels.intents) == (task, intents)
