"""The planner learns a given picture's size from the runtime (orchestrator.agent_context.image_size_reader):
the CLI reads the user's own file, the daemon only names inside its input folder; an outpainting
then pads the whole picture to the asked aspect instead of a square cut from its middle."""

from __future__ import annotations

import os
from types import SimpleNamespace

from PIL import Image

from agents.daemon import make_planner
from orchestrator.agent_context import image_size_reader
from orchestrator.config import Settings
from orchestrator.plugins import plugin_host_from_settings


def picture(path, size):
    Image.new("RGB", size, (120, 90, 60)).save(path)
    return path


def test_the_cli_reads_its_own_files_and_the_daemon_only_its_input_folder(tmp_path):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    picture(inputs / "beach.png", (600, 400))
    outside = picture(tmp_path / "secret.png", (300, 200))
    (inputs / "notes.txt").write_text("not a picture")
    os.symlink(outside, inputs / "link.png")
    settings = SimpleNamespace(effective_input_dir=inputs)
    local = image_size_reader(settings, confined=False)
    assert local(str(inputs / "beach.png")) == (600, 400)
    assert local(str(outside)) == (300, 200)
    daemon = image_size_reader(settings, confined=True)
    assert daemon("beach.png") == (600, 400)
    # names that leave the folder, links out, missing files and non-pictures: unknown, never read
    for name in (str(outside), "../secret.png", "link.png", "missing.png", "notes.txt", "", "/dev/zero"):
        assert daemon(name) is None, name


def test_an_outpainting_pads_the_whole_given_picture_to_the_asked_aspect(tmp_path):
    settings = Settings(state_dir=tmp_path / "state")
    host, settings = plugin_host_from_settings(settings)
    wide = picture(tmp_path / "wide.png", (600, 400))
    sized = make_planner(settings, host, image_size=image_size_reader(settings, confined=False))
    blind = make_planner(settings, host)
    prompt = "extend this beach photo to 16:9, more sand and sea on both sides"
    options = {"inputs": {"image": str(wide)}, "seed": 1}

    def shape(doc):
        nodes = doc["nodes"]
        fit = next(n["params"] for n in nodes.values() if n["block"] == "image.resize")
        pad = next(n["params"] for n in nodes.values() if n["block"] == "sd.outpaint_pad")
        return fit, (fit["width"] + pad["left"] + pad["right"]) / (fit["height"] + pad["top"] + pad["bottom"])

    fit, aspect = shape(sized(prompt, options)[0])
    assert fit["width"] > fit["height"]  # the 3:2 picture kept its shape before the pad
    assert abs(aspect - 16 / 9) / (16 / 9) < 0.1
    fit, aspect = shape(blind(prompt, options)[0])
    assert fit["width"] == fit["height"]  # size unknown: a square from the middle, then padded
    assert abs(aspect - 16 / 9) / (16 / 9) < 0.25
