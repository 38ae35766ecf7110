"""python -m stylegan generate | mix | noise | video | regenerate, as a user runs them."""

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image

import stylegan
from conftest import REFERENCE, run_python, tiny_generator
from stylegan import demos


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    stylegan.save_safetensors(tiny_generator(32), path)
    return str(path)


def cli(*args):
    return run_python(["-m", "stylegan", *map(str, args)])


def test_generate_grid_and_folder(model, tmp_path):
    result = cli("generate", "--model", model, "--seeds", "0-2, 9", "--out", tmp_path / "faces.png")
    assert result.returncode == 0, result.stderr
    grid = Image.open(tmp_path / "faces.png")
    assert grid.size == (4 * 32, 32)
    result = cli("generate", "--model", model, "--seeds", "3,4", "--out", tmp_path / "faces")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "faces").iterdir()) == ["grid.png", "seed0003.png", "seed0004.png"]
    assert demos.read_recipe(tmp_path / "faces" / "seed0004.png")["output"] == "image:1"


def test_mix_noise_video(model, tmp_path):
    result = cli("mix", "--model", model, "--rows", "1,2,3", "--cols", "4,5,6,7", "--layers", "0-3",
                 "--out", tmp_path / "mix.png")
    assert result.returncode == 0, result.stderr
    assert Image.open(tmp_path / "mix.png").size == (5 * 32, 4 * 32)
    result = cli("noise", "--model", model, "--seed", "3", "--samples", "5", "--layers", "fine",
                 "--out", tmp_path / "noise.png")
    assert result.returncode == 0, result.stderr
    assert Image.open(tmp_path / "noise-layers.png").size == (4 * 32, 32)
    result = cli("video", "--model", model, "--seeds", "1,2,3", "--frames", "3", "--no-loop",
                 "--out", tmp_path / "walk.mp4")
    assert result.returncode == 0, result.stderr
    assert iio.imread(tmp_path / "walk.mp4").shape[0] == 2 * 3 + 1
    assert "100%" in result.stderr  # the progress bar


@pytest.mark.parametrize("name", ["mix.png", "noise-layers.png", "faces.png"])
def test_regenerate_is_identical(model, tmp_path, name):
    src = tmp_path / name
    make = {"mix.png": ["mix", "--layers", "middle"], "noise-layers.png": ["noise", "--samples", "3"],
            "faces.png": ["generate", "--seeds", "5-7", "--noise-mode", "random", "--noise-seed", "4"]}[name]
    out = tmp_path / ("noise.png" if name == "noise-layers.png" else name)
    assert cli(*make, "--model", model, "--out", out).returncode == 0
    result = cli("regenerate", src)
    assert result.returncode == 0, result.stderr
    again = src.with_name(src.stem + "-regenerated.png")
    assert np.array_equal(np.asarray(Image.open(again)), np.asarray(Image.open(src)))


def test_regenerate_warns_about_another_model(model, tmp_path):
    assert cli("generate", "--model", model, "--seeds", "1", "--out", tmp_path / "a.png").returncode == 0
    other = tmp_path / "other.safetensors"
    stylegan.save_safetensors(tiny_generator(32, seed=1), other)
    result = cli("regenerate", tmp_path / "a.png", "--model", other, "--out", tmp_path / "b.png")
    assert result.returncode == 0 and "sha256 differs" in result.stderr


BAD = [
    (["generate", "--seeds", "-3"], "is not a seed"),
    (["generate", "--seeds", "1.5"], "is not a seed"),
    (["generate", "--seeds", "4294967296"], "out of range"),
    (["generate", "--seeds", ""], "No seeds"),
    (["generate", "--seeds", "1,,x"], "is not a seed"),
    (["generate", "--seeds", "0-20", "--max-images", "8"], "at most 8"),
    (["generate", "--psi", "3"], "outside [-2, 2]"),
    (["generate", "--class", "2"], "unconditional"),
    (["mix", "--layers", "3-99"], "outside this model's layers"),
    (["mix", "--layers", "fine"], "no 'fine' layers"),
    (["noise", "--samples", "1"], "from 2 to"),
    (["video", "--frames", "500", "--max-frames", "100"], "at most 100"),
    (["video", "--seeds", "4"], "at least two"),
]


@pytest.mark.parametrize("args, message", BAD)
def test_bad_input(model, tmp_path, args, message):
    command, rest = args[0], args[1:]
    out = tmp_path / ("walk.mp4" if command == "video" else "out.png")
    result = cli(command, "--model", model, *rest, "--out", out)
    assert result.returncode == 2
    assert message in result.stderr and result.stderr.startswith("error: ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_conditional_model_needs_a_class(tmp_path):
    result = cli("generate", "--model", REFERENCE / "sg2_32_cond10.pkl", "--out", tmp_path / "c.png")
    assert result.returncode == 2 and "conditional" in result.stderr
    assert not (tmp_path / "c.png").exists()


@pytest.mark.parametrize("out", ["missing/out.png", "file.txt/out.png", "out.jpg"])
def test_unwritable_output(model, tmp_path, out):
    (tmp_path / "file.txt").write_text("x")
    result = cli("mix", "--model", model, "--out", tmp_path / out)
    assert result.returncode == 2 and result.stderr.startswith("error: ")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["file.txt"]


def test_video_to_missing_folder(model, tmp_path):
    result = cli("video", "--model", model, "--out", tmp_path / "no" / "walk.mp4")
    assert result.returncode == 2 and "does not exist" in result.stderr


def test_help_has_examples():
    for command in ("generate", "mix", "noise", "video", "regenerate", "info", "convert"):
        result = cli(command, "--help")
        assert result.returncode == 0 and "example: python -m stylegan " + command in result.stdout
