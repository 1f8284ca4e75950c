"""Confinement of the files a request names (orchestrator.state.input_paths, Context.open_input,
image.load) and input-file content in cache keys (orchestrator.runtime.compile)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from graphs import GraphBuilder
from orchestrator.context import Context
from orchestrator.errors import BlockError
from orchestrator.runtime.compile import compile_graph, key_input_files
from orchestrator.runtime.executor import LocalExecutor
from orchestrator.state.input_paths import (
    InputPathError,
    input_digest,
    input_file_params,
    input_name_errors,
    name_problem,
    open_confined,
)

HOSTILE_NAMES = [
    "/etc/passwd", "../secret.png", "a/../../secret.png", "..", "~/secret.png", "~root/x",
    "file:///etc/passwd", "http://127.0.0.1/x.png", "C:/Windows/win.ini", "c:x.png",
    "..\\secret.png", "a\\b.png", "%2e%2e/secret.png", "%2E%2E%2Fsecret.png", "x%00.png",
    "x\x00.png", "x\n.png", "", ".", "./", "a" * 2000,
]


def png(path: Path, color=(255, 0, 0), size=(4, 3)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)
    return path


@pytest.fixture()
def folders(tmp_path):
    """An input folder with files, links in and out, a FIFO; a secret next to it."""
    inside = tmp_path / "inputs"
    png(inside / "a.png")
    png(inside / "sub" / "b.png", (0, 255, 0))
    secret = png(tmp_path / "secret.png", (1, 2, 3))
    os.symlink("a.png", inside / "link-in.png")
    os.symlink("sub", inside / "sub-link")
    os.symlink(secret, inside / "link-out.png")
    os.symlink("../secret.png", inside / "link-up.png")
    os.symlink(tmp_path / "nothing-here.png", inside / "dangling-out.png")
    os.symlink(tmp_path, inside / "dir-out")
    os.symlink("/dev/zero", inside / "zero")
    os.mkfifo(inside / "fifo")
    return inside, tmp_path


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_names_that_can_never_be_inside_are_refused_without_touching_the_disk(name):
    assert name_problem(name) is not None


@pytest.mark.parametrize("name", ["a.png", "sub/b.png", "./a.png", "sub//b.png", "x y.png",
                                  "über.png", "12:30.png", "a..b.png", "...png"])
def test_ordinary_relative_names_pass_the_name_check(name):
    assert name_problem(name) is None


@pytest.mark.parametrize("name", ["a.png", "sub/b.png", "link-in.png", "sub-link/b.png"])
def test_files_inside_open(folders, name):
    inside, _ = folders
    with open_confined(inside, name) as f:
        assert Image.open(f).size == (4, 3)


@pytest.mark.parametrize("name", ["link-out.png", "link-up.png", "dangling-out.png",
                                  "dir-out/secret.png", "zero", "missing.png",
                                  "dir-out/nothing-here.png"])
def test_every_way_out_gets_one_message_that_names_no_host_path(folders, name):
    inside, tmp = folders
    with pytest.raises(InputPathError) as err:
        open_confined(inside, name)
    assert str(err.value) == f"{name!r} is not a file in the input folder"
    assert str(tmp) not in str(err.value)


@pytest.mark.parametrize("name", ["fifo", "sub"])
def test_only_regular_files_open_and_a_fifo_does_not_block(folders, name):
    inside, _ = folders
    with pytest.raises(InputPathError, match="not a regular file"):
        open_confined(inside, name)


def test_a_file_swapped_for_a_symlink_is_not_followed_out(folders):
    inside, tmp = folders
    (inside / "a.png").unlink()
    os.symlink(tmp / "secret.png", inside / "a.png")
    with pytest.raises(InputPathError, match="not a file in the input folder"):
        open_confined(inside, "a.png")
    with pytest.raises(InputPathError):  # the link that pointed at it now leads out too
        open_confined(inside, "link-in.png")


def test_a_symlink_loop_is_refused(tmp_path):
    os.symlink("b", tmp_path / "a")
    os.symlink("a", tmp_path / "b")
    with pytest.raises(InputPathError, match="not a file in the input folder"):
        open_confined(tmp_path, "a")


def _ctx(root: Path, confine: bool = True) -> Context:
    return Context(node="load", block="image.load", seed=0, input_root=root, confine_inputs=confine)


@pytest.mark.parametrize("name", ["/etc/passwd", "../secret.png", "link-out.png", "missing.png",
                                  "file:///etc/passwd", "zero", "fifo"])
def test_the_context_refuses_with_a_structured_error(folders, name):
    inside, tmp = folders
    for fn in (_ctx(inside).open_input, _ctx(inside).resolve_input):
        with pytest.raises(BlockError) as err:
            fn(name)
        d = err.value.to_dict()
        assert (d["type"], d["node"], d["field"], d["value"]) == ("input", "load", "params.path", name)
        assert str(tmp) not in d["message"] and "passwd" not in d["message"].replace(name, "")


def test_confined_without_an_input_folder_reads_nothing():
    ctx = Context(node="n", block="image.load", seed=0, confine_inputs=True)
    with pytest.raises(BlockError, match="no input folder"):
        ctx.open_input("a.png")


def test_unconfined_runs_keep_reading_relative_to_the_root_and_absolute_paths(folders):
    inside, tmp = folders
    ctx = _ctx(inside, confine=False)
    assert ctx.resolve_input("a.png") == (inside / "a.png").resolve()
    with ctx.open_input(str(tmp / "secret.png")) as f:  # the CLI user's own graph
        assert f.read(4) == b"\x89PNG"


def test_image_load_reads_inside_and_refuses_outside(catalog, folders):
    inside, tmp = folders
    ex = LocalExecutor(catalog, input_root=inside, confine_inputs=True)
    b = GraphBuilder()
    b.add("image.load", id="l", path="sub-link/b.png")
    out = ex.run(b.build()).outputs["l"]["image"]
    assert out.shape == (1, 3, 4, 3) and out[0, 0, 0, 1] == 1.0
    for name in ("link-out.png", "../secret.png", str(tmp / "secret.png")):
        b = GraphBuilder()
        b.add("image.load_mask", id="m", path=name)
        with pytest.raises(BlockError) as err:
            ex.run(b.build())
        assert err.value.to_dict()["node"] == "m"
        assert str(tmp) not in str(err.value).replace(name, "")  # only the name it was given


def test_image_load_refuses_formats_that_are_not_images(catalog, tmp_path):
    (tmp_path / "x.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>')
    (tmp_path / "x.eps").write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 4 4\n")
    ex = LocalExecutor(catalog, input_root=tmp_path, confine_inputs=True)
    for name in ("x.svg", "x.eps"):
        b = GraphBuilder()
        b.add("image.load", id="l", path=name)
        with pytest.raises(BlockError, match="not a readable image") as err:
            ex.run(b.build())
        assert str(tmp_path) not in str(err.value)


def test_the_image_blocks_mark_their_path_param_as_an_input_file(catalog):
    assert input_file_params(catalog["image.load"].params_model) == ("path",)
    assert input_file_params(catalog["image.load_mask"].params_model) == ("path",)
    assert input_file_params(catalog["image.solid"].params_model) == ()
    assert catalog["image.load"].params_schema()["properties"]["path"]["input_file"] is True


def test_the_upload_route_and_the_blocks_decode_the_same_formats():
    from orchestrator.server.inputs import IMAGE_FORMATS
    from plugins.image.io import IMAGE_FORMATS as BLOCK_FORMATS

    assert IMAGE_FORMATS == BLOCK_FORMATS


def test_submit_time_errors_name_node_field_and_value(catalog):
    b = GraphBuilder()
    b.add("image.load", id="ok", path="a.png")
    b.add("image.load", id="abs", path="/etc/passwd")
    b.add("image.load_mask", id="up", path="../../x.png")
    errors = input_name_errors(b.build(), catalog)
    assert {(e["node"], e["field"], e["value"]) for e in errors} == {
        ("abs", "params.path", "/etc/passwd"), ("up", "params.path", "../../x.png")}
    assert all(e["type"] == "input" and "input folder" in e["message"] for e in errors)


# -- cache keys cover the content of input files ---------------------------------------------------


def _load_graph(name: str = "a.png"):
    b = GraphBuilder()
    img = b.add("image.load", id="l", path=name)
    b.add("image.grayscale", id="g", image=img.image)
    return b.build()


def test_keys_change_with_the_file_content_and_seeds_do_not(catalog, tmp_path):
    png(tmp_path / "a.png", (255, 0, 0))
    plain = compile_graph(_load_graph(), catalog)
    first = key_input_files(plain, tmp_path)
    assert first.keys != plain.keys
    assert key_input_files(plain, tmp_path).keys == first.keys  # same content, same keys
    png(tmp_path / "a.png", (0, 0, 255))
    second = key_input_files(plain, tmp_path)
    assert second.keys["l"] != first.keys["l"] and second.keys["g"] != first.keys["g"]
    assert [second.seed(n) for n in plain.order] == [plain.seed(n) for n in plain.order]
    assert compile_graph(_load_graph(), catalog, input_root=tmp_path).keys == second.keys


def test_a_replaced_input_file_is_not_served_from_the_local_engine_cache(catalog, tmp_path):
    from orchestrator.config import Settings
    from orchestrator.runtime.engine import LocalEngine

    settings = Settings(state_dir=tmp_path / "state")
    engine = LocalEngine(catalog, settings)
    inputs = settings.effective_input_dir
    assert inputs.is_dir() and (inputs.stat().st_mode & 0o777) == 0o700

    def run():
        res = engine.run(compile_graph(_load_graph(), catalog), job="j", priority=0,
                         outputs_dir=tmp_path / "out", on_event=lambda e: None,
                         is_cancelled=lambda: False)
        return res.outputs["g"]["image"][0, 0, 0, 0], res.cached

    png(inputs / "a.png", (255, 255, 255))
    assert run() == (pytest.approx(1.0), set())
    assert run() == (pytest.approx(1.0), {"l", "g"})
    png(inputs / "a.png", (0, 0, 0))
    value, cached = run()
    assert value == pytest.approx(0.0) and cached == set()


def test_the_local_engine_always_confines_even_with_an_input_dir_set(catalog, tmp_path):
    from orchestrator.config import Settings
    from orchestrator.runtime.engine import LocalEngine

    png(tmp_path / "secret.png")
    settings = Settings(state_dir=tmp_path / "state", input_dir=tmp_path / "mine")
    engine = LocalEngine(catalog, settings)
    with pytest.raises(BlockError, match="is not a file in the input folder"):
        engine.run(compile_graph(_load_graph("secret.png"), catalog), job="j",
                   priority=0, outputs_dir=tmp_path / "out", on_event=lambda e: None,
                   is_cancelled=lambda: False)
    with pytest.raises(BlockError, match="must be relative"):
        engine.run(compile_graph(_load_graph(str(tmp_path / "secret.png")), catalog), job="j",
                   priority=0, outputs_dir=tmp_path / "out", on_event=lambda e: None,
                   is_cancelled=lambda: False)


def test_digests_of_names_that_cannot_be_read(tmp_path):
    assert input_digest(tmp_path, "../x.png") == "refused"
    assert input_digest(tmp_path, "missing.png") == "missing"
    data = io.BytesIO()
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(data, "PNG")
    (tmp_path / "z.png").write_bytes(data.getvalue())
    assert len(input_digest(tmp_path, "z.png")) == 64


def test_a_file_replaced_while_its_job_runs_is_not_cached_under_the_old_content(catalog, tmp_path):
    """Keyed with content A, read as B (replaced between keying and reading): the result must
    not stay cached under A's key, or a later job with A would get B's result."""
    from orchestrator.config import Settings
    from orchestrator.runtime.engine import LocalEngine

    settings = Settings(state_dir=tmp_path / "state")
    engine = LocalEngine(catalog, settings)
    target = settings.effective_input_dir / "a.png"

    def run(on_event=lambda e: None):
        res = engine.run(compile_graph(_load_graph(), catalog), job="j", priority=0,
                         outputs_dir=tmp_path / "out", on_event=on_event, is_cancelled=lambda: False)
        return res.outputs["g"]["image"][0, 0, 0, 0], res.cached

    def swap_to_black(event):
        if event["event"] == "node_started" and event["node"] == "l":
            png(target, (0, 0, 0))

    png(target, (255, 255, 255))
    value, _ = run(on_event=swap_to_black)  # keyed as white, reads black
    assert value == pytest.approx(0.0)
    png(target, (255, 255, 255))
    value, cached = run()
    assert value == pytest.approx(1.0) and cached == set()
    assert run() == (pytest.approx(1.0), {"l", "g"})  # and the cache works as before


def test_a_same_size_rewrite_in_the_same_clock_tick_changes_the_digest(tmp_path):
    """Every stat field can stay the same (coarse file times): recent files are hashed again."""
    path = tmp_path / "a.bin"
    path.write_bytes(b"A" * 64)
    first = input_digest(tmp_path, "a.bin", confine=True)
    st = path.stat()
    with open(path, "r+b") as f:
        f.write(b"B" * 64)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # the same mtime, as in one tick
    assert input_digest(tmp_path, "a.bin") != first
    from orchestrator.state.input_paths import DIGESTS

    assert not [k for k in DIGESTS._data if k[1] == path.stat().st_ino]  # a recent file: not kept
