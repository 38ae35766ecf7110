"""python -m stylegan generate | mix | noise | video | regenerate, as a user runs them.

The main flows run in a fresh process, as a user starts them; the many bad inputs call the same
main() in this process (a fresh Python costs over a second here), and a few of them also run in a
fresh process to check the real exit status.
"""

import os
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from PIL import Image

import stylegan
from conftest import REFERENCE, run_main, run_python, tiny_generator
from stylegan import demos, outputs

COND = REFERENCE / "sg2_32_cond10.pkl"
SG3 = REFERENCE / "sg3t_32.pkl"


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    stylegan.save_safetensors(tiny_generator(32), path)
    return str(path)


pytestmark = pytest.mark.usefixtures("one_thread")


def cli(*args):
    """python -m stylegan ARGS in a fresh process."""
    return run_python(["-m", "stylegan", *map(str, args)], env={"OMP_NUM_THREADS": "1"})


def pixels(path):
    with Image.open(path) as im:
        return np.asarray(im).astype(np.int64)


def files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# -- the main flows, in fresh processes

@pytest.fixture(scope="module")
def made(model, tmp_path_factory):
    """Outputs of generate (to a folder), mix and noise, made once for the tests below."""
    out = tmp_path_factory.mktemp("made")
    for args in (["generate", "--seeds", "3, 4, 11", "--noise-mode", "random", "--noise-seed", "5",
                  "--out", out / "faces"],
                 ["mix", "--rows", "1,2,3", "--cols", "4,5,6,7", "--layers", "0-3", "--psi", "0.5",
                  "--out", out / "mix.png"],
                 ["noise", "--seed", "3", "--samples", "5", "--layers", "fine", "--out", out / "noise.png"]):
        result = cli(*args, "--model", model)
        assert result.returncode == 0, result.stderr
        assert result.stderr == "" and result.stdout.startswith("wrote ")
    return out


def test_generate_folder(made):
    folder = made / "faces"
    assert files(folder) == ["grid.png", "seed0003.png", "seed0004.png", "seed0011.png"]
    assert [p.name for p in made.iterdir() if p.name.startswith(".")] == []  # no temporary folder left
    grid = pixels(folder / "grid.png")
    assert grid.shape == (32, 3 * 32, 3)
    for k, seed in enumerate([3, 4, 11]):
        assert np.array_equal(grid[:, 32 * k:32 * (k + 1)], pixels(folder / f"seed{seed:04d}.png"))
        recipe = demos.read_recipe(folder / f"seed{seed:04d}.png")
        assert recipe["output"] == f"image:{k}" and recipe["seeds"] == [3, 4, 11] and recipe["noise_seed"] == 5
    assert demos.read_recipe(folder / "grid.png")["output"] == "grid"


def test_mix_and_noise(made):
    assert pixels(made / "mix.png").shape == (4 * 32, 5 * 32, 3)
    recipe = demos.read_recipe(made / "mix.png")
    assert (recipe["kind"], recipe["layers"], recipe["psi"], recipe["output"]) == ("style_mix", [0, 3], 0.5, "grid")
    assert pixels(made / "noise.png").shape == (2 * 32, 4 * 32, 3)  # 5 samples and the heat map
    assert pixels(made / "noise-layers.png").shape == (32, 4 * 32, 3)
    assert demos.read_recipe(made / "noise-layers.png")["output"] == "comparison_grid"


def test_generate_grid_matches_the_library(model, tmp_path):
    result = cli("generate", "--model", model, "--seeds", "0-2, 9", "--psi", "0.6", "--out", tmp_path / "faces.png")
    assert result.returncode == 0, result.stderr
    G = stylegan.load(model, device="cpu")
    want = demos.generate(G, "0-2, 9", psi=0.6).grid
    assert np.array_equal(pixels(tmp_path / "faces.png"), np.asarray(want))


@pytest.mark.parametrize("name, loop", [("walk.mp4", False), ("walk.gif", True)])
def test_video(model, tmp_path, name, loop):
    result = cli("video", "--model", model, "--seeds", "1,2,3", "--frames", "3", "--fps", "12", "--space", "w",
                 *([] if loop else ["--no-loop"]), "--out", tmp_path / name)
    assert result.returncode == 0, result.stderr
    assert iio.imread(tmp_path / name).shape[0] == (3 * 3 if loop else 2 * 3 + 1)
    assert "100%" in result.stderr and "frame" in result.stderr  # the progress bar
    assert files(tmp_path) == [name]


@pytest.mark.parametrize("name", ["mix.png", "noise.png", "noise-layers.png", "faces/seed0011.png"])
def test_regenerate_is_identical(made, tmp_path, name):
    src = made / name
    if name.startswith("faces/"):
        again = tmp_path / "again.png"
        result = cli("regenerate", src, "--out", again)
    else:  # by default, next to the image
        again = src.with_name(src.stem + "-regenerated.png")
        result = cli("regenerate", src)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # same model: no warning
    assert np.array_equal(pixels(again), pixels(src))
    assert demos.read_recipe(again)["output"] == demos.read_recipe(src)["output"]


def test_regenerate_with_another_model_warns(made, tmp_path):
    other = tmp_path / "other.safetensors"
    stylegan.save_safetensors(tiny_generator(32, seed=1), other)
    result = cli("regenerate", made / "mix.png", "--model", other, "--out", tmp_path / "b.png")
    assert result.returncode == 0 and "sha256 differs" in result.stderr
    assert not np.array_equal(pixels(tmp_path / "b.png"), pixels(made / "mix.png"))
    assert demos.read_recipe(tmp_path / "b.png")["model"] == str(other)  # the new file names the model used


@pytest.mark.parametrize("args, message", [
    (["generate", "--seeds", "-3"], "is not a seed"),
    (["generate", "--model", COND], "This model is conditional"),
    (["video", "--out", "{tmp}/file.txt/walk.mp4"], "is a file, not a folder"),
])
def test_bad_input_in_a_fresh_process(model, tmp_path, args, message):
    (tmp_path / "file.txt").write_text("x")
    args = [a.format(tmp=tmp_path) if isinstance(a, str) else a for a in args]
    result = cli(*args, *(["--model", model] if "--model" not in args else []),
                 *(["--out", tmp_path / "out.png"] if "--out" not in args else []))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert files(tmp_path) == ["file.txt"]


# -- bad input: exit status 2, one line of error, no output file

BAD = [
    # seeds
    (["generate", "--seeds", "-3"], "'-3' is not a seed"),
    (["generate", "--seeds", "1.5"], "'1.5' is not a seed"),
    (["generate", "--seeds", "4294967296"], "Seed 4294967296 is out of range"),
    (["generate", "--seeds", "1" * 30], "is out of range"),
    (["generate", "--seeds", ""], "No seeds"),
    (["generate", "--seeds", " , "], "No seeds"),
    (["generate", "--seeds", "1,,x"], "'x' is not a seed"),
    (["generate", "--seeds", "3-1"], "runs backwards"),
    (["generate", "--seeds", "0-20", "--max-images", "8"], "at most 8"),
    (["generate", "--seeds", "0-64"], "at most 64"),
    (["mix", "--rows", "1,-1"], "'-1' is not a seed"),
    (["mix", "--cols", ""], "No seeds"),
    (["mix", "--rows", "0-7", "--cols", "0-8"], "8 x 9 cells asked for; at most 64"),
    (["noise", "--seed", "2.5"], "is not a seed"),
    (["noise", "--seed", "1-2"], "at most 1"),
    (["video", "--seeds", "4"], "at least two"),
    (["video", "--seeds", "1,x"], "is not a seed"),
    # psi and other numbers
    (["generate", "--psi", "3"], "outside [-2, 2]"),
    (["generate", "--psi", "-2.5"], "outside [-2, 2]"),
    (["generate", "--psi", "nan"], "outside [-2, 2]"),
    (["mix", "--psi", "2.01"], "outside [-2, 2]"),
    (["noise", "--psi", "-3"], "outside [-2, 2]"),
    (["video", "--psi", "7"], "outside [-2, 2]"),
    (["generate", "--cutoff", "99"], "cutoff"),
    (["generate", "--noise-mode", "loud"], "not one of const, random, none"),
    (["generate", "--noise-seed", "-1"], "Noise seed -1"),
    (["mix", "--noise-seed", "4294967296"], "Noise seed"),
    (["generate", "--rotate", "10"], "need a StyleGAN3 model"),
    # layers
    (["mix", "--layers", "3-99"], "outside this model's layers 0-8"),
    (["mix", "--layers", "9-9"], "outside this model's layers 0-8"),
    (["mix", "--layers", "fine"], "no 'fine' layers"),
    (["mix", "--layers", "some"], "not a layer range"),
    (["noise", "--layers", "0-8"], "outside this model's layers 0-7"),
    (["noise", "--layers", "loud"], "not a layer range"),
    # counts
    (["noise", "--samples", "1"], "from 2 to 64"),
    (["noise", "--samples", "65"], "from 2 to 64"),
    (["noise", "--strength", "-1"], "strength"),
    (["video", "--frames", "500", "--max-frames", "100"], "at most 100"),
    (["video", "--seeds", "0-63", "--frames", "30"], "at most 1800"),
    (["video", "--frames", "0"], "at least 1"),
    (["video", "--fps", "0"], "Frames per second"),
    (["video", "--space", "q"], "is not z or w"),
    (["video", "--easing", "bouncy"], "is not linear or smooth"),
    # classes
    (["generate", "--class", "2"], "This model is unconditional"),
    (["mix", "--class", "0"], "This model is unconditional"),
    (["noise", "--class", "0"], "This model is unconditional"),
    (["video", "--class", "0"], "This model is unconditional"),
    (["generate", "--model", COND], "This model is conditional"),
    (["mix", "--model", COND], "This model is conditional"),
    (["noise", "--model", COND], "This model is conditional"),
    (["video", "--model", COND], "This model is conditional"),
    (["generate", "--model", COND, "--class", "10"], "classes 0 to 9"),
    # models and devices
    (["noise", "--model", SG3], "has no noise inputs"),
    (["generate", "--model", "{tmp}/missing.pkl"], "no such checkpoint"),
    (["generate", "--device", "toaster"], "unknown device"),
    # outputs
    (["generate", "--out", "{tmp}/missing/out.png"], "does not exist"),
    (["generate", "--out", "{tmp}/file.txt/out.png"], "is a file, not a folder"),
    (["generate", "--out", "{tmp}/missing/faces"], "does not exist"),
    (["generate", "--out", "{tmp}/file.txt/faces"], "is a file, not a folder"),
    (["generate", "--out", "{tmp}/file.txt"], "it is a file, not a folder"),
    (["generate", "--out", "{tmp}/faces.jpg"], "written as PNG"),
    (["mix", "--out", "{tmp}/missing/out.png"], "does not exist"),
    (["mix", "--out", "{tmp}/file.txt/out.png"], "is a file, not a folder"),
    (["mix", "--out", "{tmp}/out.jpg"], "must be a .png"),
    (["noise", "--out", "{tmp}/missing/out.png"], "does not exist"),
    (["noise", "--out", "{tmp}/file.txt/out.png"], "is a file, not a folder"),
    (["video", "--out", "{tmp}/missing/walk.mp4"], "does not exist"),
    (["video", "--out", "{tmp}/file.txt/walk.mp4"], "is a file, not a folder"),
    (["video", "--out", "{tmp}/walk.avi"], "written as .mp4 or .gif"),
]


def bad_args(args, model, tmp_path):
    args = [a.format(tmp=tmp_path) if isinstance(a, str) else a for a in args]
    command, rest = args[0], args[1:]
    if "--model" not in rest:
        rest += ["--model", model]
    if "--out" not in rest:
        rest += ["--out", tmp_path / ("walk.mp4" if command == "video" else "out.png")]
    return [command, *rest]


@pytest.mark.parametrize("args, message", BAD, ids=[" ".join(map(str, a)).replace(str(REFERENCE) + "/", "")
                                                    for a, _ in BAD])
def test_bad_input(capsys, model, tmp_path, args, message):
    (tmp_path / "file.txt").write_text("x")
    status, out, err = run_main(capsys, *bad_args(args, model, tmp_path))
    assert status == 2 and out == ""
    assert err.startswith("error: ") and message in err, err
    assert len(err.strip().splitlines()) == 1
    assert files(tmp_path) == ["file.txt"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_unavailable_device(capsys, model, tmp_path):
    status, _, err = run_main(capsys, "generate", "--model", model, "--device", "cuda", "--out", tmp_path / "a.png")
    assert status == 2 and "not available on this machine" in err
    assert files(tmp_path) == []


@pytest.mark.parametrize("command, out", [("generate", "out.png"), ("generate", "faces"), ("mix", "out.png"),
                                          ("noise", "out.png"), ("video", "walk.mp4")])
def test_read_only_folder(capsys, model, tmp_path, monkeypatch, command, out):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    if os.geteuid() == 0:  # root may write anyway; let the check see what a user's process would
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda path, mode, **kwargs: (
            not mode & os.W_OK if Path(path) == folder else real_access(path, mode, **kwargs)))
    try:
        status, _, err = run_main(capsys, command, "--model", model, "--out", folder / out)
    finally:
        folder.chmod(0o755)
    assert status == 2 and err.startswith("error: ") and "is not writable" in err
    assert files(folder) == []


def test_argparse_errors_exit_2(capsys, model, tmp_path):
    for args in (["--frames", "2.5"], ["--fps", "fast"], ["--bogus"]):
        status, _, err = run_main(capsys, "video", "--model", model, *args, "--out", tmp_path / "walk.mp4")
        assert status == 2 and "error:" in err
    assert files(tmp_path) == []


def test_regenerate_bad_input(capsys, tmp_path):
    Image.new("RGB", (4, 4)).save(tmp_path / "plain.png")
    (tmp_path / "junk.png").write_bytes(b"junk")
    for image, message in [("plain.png", "carries no stylegan recipe"), ("junk.png", "not a readable PNG"),
                           ("missing.png", "not a readable PNG")]:
        status, _, err = run_main(capsys, "regenerate", tmp_path / image)
        assert status == 2 and err.startswith("error: ") and message in err
    assert files(tmp_path) == ["junk.png", "plain.png"]


# -- atomic output, limits, help

def test_folder_output_is_all_or_nothing(capsys, model, tmp_path, monkeypatch):
    folder = tmp_path / "faces"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    status, out, _ = run_main(capsys, "generate", "--model", model, "--seeds", "1,2,1", "--out", folder)
    assert status == 0 and out.count("wrote") == 3
    assert files(folder) == ["grid.png", "keep.txt", "seed0001.png", "seed0002.png"]

    calls = []

    def failing_save(image, path, recipe):  # the disk fills up at the second file
        calls.append(path)
        if len(calls) == 2:
            raise demos.DemoError(f"Cannot write {path}: No space left on device.")
        return real_save(image, path, recipe)
    real_save = outputs.save_png
    monkeypatch.setattr(outputs, "save_png", failing_save)
    status, _, err = run_main(capsys, "generate", "--model", model, "--seeds", "5,6", "--out", tmp_path / "new")
    assert status == 2 and "No space left" in err and len(calls) == 2
    assert files(tmp_path) == ["faces", "faces/grid.png", "faces/keep.txt", "faces/seed0001.png",
                               "faces/seed0002.png"]
    calls.clear()
    status, _, err = run_main(capsys, "noise", "--model", model, "--samples", "2", "--out", tmp_path / "noise.png")
    assert status == 2 and not (tmp_path / "noise.png").exists()  # both files or neither


def test_regenerate_respects_the_image_limit(capsys, model, tmp_path):
    status, _, _ = run_main(capsys, "generate", "--model", model, "--seeds", "0-69", "--max-images", "70",
                            "--out", tmp_path / "many.png")
    assert status == 0
    status, _, err = run_main(capsys, "regenerate", tmp_path / "many.png")
    assert status == 2 and "at most 64" in err
    status, _, err = run_main(capsys, "regenerate", tmp_path / "many.png", "--max-images", "70",
                              "--out", tmp_path / "again.png")
    assert status == 0, err
    assert np.array_equal(pixels(tmp_path / "again.png"), pixels(tmp_path / "many.png"))


@pytest.mark.parametrize("command", ["generate", "mix", "noise", "video", "edit", "layers", "directions", "project",
                                     "regenerate", "info", "convert", "export-onnx", "check-catalog"])
def test_help_has_examples(capsys, command):
    status, out, _ = run_main(capsys, command, "--help")
    assert status == 0 and "example: python -m stylegan " + command in out


def test_help_in_a_fresh_process():
    result = cli("--help")
    assert result.returncode == 0
    for command in ("generate", "mix", "noise", "video", "regenerate"):
        assert command in result.stdout


@pytest.mark.parametrize("args", [["--help"], ["generate", "--help"], ["video", "--help"], ["info", "--help"],
                                  ["export-onnx", "--help"], ["check-catalog", "--help"]])
def test_help_answers_without_importing_torch(args):
    code = ("import sys\nfrom stylegan.__main__ import main\ntry:\n    main(%r)\nexcept SystemExit:\n    pass\n"
            "print('torch imported:', 'torch' in sys.modules)" % args)
    result = run_python(code)
    assert result.returncode == 0 and "example: python -m stylegan" in result.stdout
    assert result.stdout.strip().endswith("torch imported: False")


def test_info_without_a_source_describes_the_bundled_model(capsys):
    status, out, _ = run_main(capsys, "info")
    assert status == 0 and "source:      bundled" in out and "64 px" in out


def test_installed_package_carries_its_data_and_a_stylegan_command(tmp_path):
    """`pip install .` makes a wheel with the bundled model and the catalog, and a `stylegan`
    command; the installed package works from any folder."""
    import subprocess
    import sys
    import zipfile
    from conftest import ROOT
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path / "dist"), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    wheel, = (tmp_path / "dist").glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = archive.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
        archive.extractall(tmp_path / "site")
    assert {"stylegan/checkpoints/offline-faces-64.safetensors", "stylegan/checkpoints/catalog.json"} <= set(names)
    assert "stylegan = stylegan.__main__:main" in entry_points
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = subprocess.run([sys.executable, "-m", "stylegan", "generate", "--seeds", "1-2", "--out", "faces.png"],
                            cwd=elsewhere, env={**os.environ, "PYTHONPATH": str(tmp_path / "site")},
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert Image.open(elsewhere / "faces.png").size == (2 * 64, 64)
    assert demos.read_recipe(elsewhere / "faces.png")["model"] == "bundled"
