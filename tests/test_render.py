"""stylegan render on a real local Ray: a run killed half-way and resumed, WebDataset shards, and
the refusals (a changed argument, an unreachable cluster, a full disk, no Ray). Ray takes seconds
to start, so the runs are shared and the refusals come before Ray starts where they can."""

import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, run_python

SEEDS, COUNT, BATCH = "0-47", 48, 8


def require_ray():
    try:
        import pyarrow  # noqa: F401
        import ray  # noqa: F401
    except ImportError:
        pytest.fail('Ray is not installed: pip install ".[scale]" (requirements-test.txt installs it in CI).')


def render_cli(out, *args, seeds=SEEDS):
    return ["-m", "stylegan", "render", "--seeds", seeds, "--batch", str(BATCH), "--workers", "2", "--out", str(out),
            *args]


def session_processes(sid):
    """Live processes of a session (the driver's and Ray's, which it started)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def kill_session(sid):
    """SIGKILL the driver's process group, then whatever of its session is left: Ray's workers
    each have a process group of their own."""
    try:
        os.killpg(sid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + 30
    while session_processes(sid) and time.monotonic() < deadline:
        for pid in session_processes(sid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.5)
    return session_processes(sid)


def manifest_seeds(out, shards=False):
    """The seeds a run's manifest parts record (checking that each one's PNG is whole)."""
    import pyarrow.parquet as pq
    parts = (out / "manifest").glob("part-*.parquet")
    seeds = [seed for part in parts for seed in pq.read_table(part)["seed"].to_pylist()]
    for seed in [] if shards else seeds:
        with Image.open(out / f"seed{seed:04d}.png") as png:
            png.load()
    return sorted(seeds)


def read_manifest(out):
    import pyarrow.parquet as pq
    return pq.read_table(out / "manifest.parquet").to_pylist()


@pytest.fixture(scope="module")
def resumed(tmp_path_factory):
    """48 faces: a run SIGKILLed (with its Ray) once its first files exist, then a full-disk run
    that stops after a few more, then a run to the end. The killed run writes to a slow disk: on
    an idle machine the 48 faces are otherwise all written within the moment it takes to notice
    the first."""
    require_ray()
    out = tmp_path_factory.mktemp("render") / "faces"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open(out.parent / "killed.log", "w") as log:
        driver = subprocess.Popen([sys.executable, "-c", SLOW_DISK + f"sys.exit(main({render_cli(out)[2:]!r}))"],
                                  cwd=ROOT, env=env, stdout=log, stderr=log, start_new_session=True)
    deadline = time.monotonic() + 240
    while not list(out.glob("seed*.png")) and driver.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    lingering = kill_session(driver.pid)
    driver.wait()
    killed_files = len(list(out.glob("seed*.png")))
    recorded = manifest_seeds(out)
    full_disk = run_python(FULL_DISK + f"sys.exit(main({render_cli(out)[2:]!r}))")
    recorded_after_full_disk = manifest_seeds(out)
    final = run_python(render_cli(out))
    return dict(out=out, killed_files=killed_files, lingering=lingering, full_disk=full_disk, recorded=recorded,
                recorded_after_full_disk=recorded_after_full_disk, final=final,
                killed_log=(out.parent / "killed.log").read_text())


# Each image takes a fifth of a second to write, as on a slow disk (the same seam as FULL_DISK's).
SLOW_DISK = """
import builtins, sys, time
from stylegan import render
from stylegan.__main__ import main
def open_slowly(path, mode="r", *args, **kwargs):
    if str(path).endswith(".png") and "w" in mode:
        time.sleep(0.2)
    return builtins.open(path, mode, *args, **kwargs)
render.open = open_slowly
"""


# Writing fails as on a full disk from the fifth image on: render.py's open() is replaced by one
# that raises ENOSPC for PNGs (a fault injected where the module meets the file system);
# everything else is the real CLI.
FULL_DISK = """
import builtins, errno, os, sys
from stylegan import render
from stylegan.__main__ import main
images = []
def open_on_a_full_disk(path, mode="r", *args, **kwargs):
    if str(path).endswith(".png") and "w" in mode:
        images.append(path)
        if len(images) > 4:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return builtins.open(path, mode, *args, **kwargs)
render.open = open_on_a_full_disk
"""


def test_killed_run_leaves_nothing_running_and_only_whole_files(resumed):
    assert resumed["killed_files"] > 0, resumed["killed_log"]
    assert resumed["killed_files"] < COUNT, "the run ended before it was killed: nothing was resumed"
    assert resumed["lingering"] == [], "Ray processes of the killed run are still running"


def test_full_disk_stops_with_one_sentence_and_loses_nothing(resumed):
    r = resumed["full_disk"]
    assert r.returncode == 2, r.stderr
    error = r.stderr.strip().splitlines()[-1]
    assert error.startswith("error: Cannot write ") and "No space left on device" in error, r.stderr
    assert "Traceback" not in r.stderr
    before, after = resumed["recorded"], resumed["recorded_after_full_disk"]
    assert len(after) == len(before) + 4 and set(before) < set(after)  # the four written before are recorded
    assert not [p for p in resumed["out"].iterdir() if p.name.startswith(".")]  # no partial file left


def test_resumed_run_has_every_face_once_with_generates_pixels(resumed):
    r, out = resumed["final"], resumed["out"]
    assert r.returncode == 0, r.stderr
    assert "already there" in r.stdout
    names = sorted(p.name for p in out.glob("seed*.png"))
    assert names == [f"seed{seed:04d}.png" for seed in range(COUNT)]
    assert sorted(p.name for p in out.iterdir()) == ["manifest.parquet", "render.json", *names]  # no leftovers
    rows = read_manifest(out)
    assert sorted(row["seed"] for row in rows) == list(range(COUNT))  # each seed once
    import torch
    from stylegan import demos, loading
    G = loading.load(None, device="cpu")
    # generate, in passes of the same batch size (48 seeds, 8 at a time) and with as many threads
    # as each of the two workers had (one thread and several round differently): the same pixels.
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, len(os.sched_getaffinity(0)) // 2))
    try:
        expected = demos.generate(G, seeds=SEEDS, psi=0.7, batch_size=BATCH, max_images=COUNT).images
    finally:
        torch.set_num_threads(threads)
    for seed, image in enumerate(expected):
        with Image.open(out / f"seed{seed:04d}.png") as png:
            assert np.array_equal(np.asarray(png), np.asarray(image)), f"seed {seed}"
    row = next(row for row in rows if row["seed"] == 5)
    assert row["file"] == "seed0005.png" and row["shard"] is None and row["model_sha256"] == G.sha256
    assert (row["psi"], row["truncation_cutoff"], row["class_idx"], row["noise_mode"]) == (0.7, None, None, "const")
    recipe = demos.read_recipe(out / "seed0005.png")
    assert json.loads(row["recipe"]) == recipe and recipe["seeds"] == [5] and recipe["batch_size"] == BATCH
    rebuilt = demos.run_recipe(G, recipe)  # stylegan regenerate: one seed, so a pass of one image
    assert np.abs(np.asarray(rebuilt, dtype=int) - np.asarray(expected[5], dtype=int)).max() <= 1


def test_rerun_of_a_finished_run_renders_nothing(resumed):
    r = run_python(render_cli(resumed["out"]))
    assert r.returncode == 0, r.stderr
    assert f"rendered 0 images into {resumed['out']} ({COUNT} were already there)" in r.stdout
    assert len(read_manifest(resumed["out"])) == COUNT


@pytest.mark.parametrize("change, says", [(["--psi", "0.5"], "psi 0.7, not 0.5"),
                                          (["--format", "webdataset"], "format 'png', not 'webdataset'"),
                                          (["--seeds", "0-48"], "seeds '0-47', not '0-48'")])
def test_changed_argument_in_the_same_folder_is_refused(resumed, change, says):
    out = resumed["out"]
    before = sorted(out.iterdir())
    r = run_python(render_cli(out, *change[:2]) if change[0] != "--seeds" else render_cli(out, seeds=change[1]))
    assert r.returncode == 2
    assert r.stderr.strip() == f"error: {out} holds a render made with {says}: rerun it with the same arguments, " \
                               "or render into another folder."
    assert sorted(out.iterdir()) == before


# The second shard cannot be finished (the disk is full when it is closed).
SECOND_SHARD_FAILS = """
import sys
from stylegan import render
from stylegan.__main__ import main
close, closed = render.Shard.close, []
def close_on_a_full_disk(shard):
    closed.append(shard.path)
    if len(closed) == 2:
        shard.discard()
        raise render.SettingsError(f"Cannot write {shard.path}: No space left on device.")
    close(shard)
render.Shard.close = close_on_a_full_disk
"""


def test_webdataset_shards_resume_whole(tmp_path):
    require_ray()
    out = tmp_path / "shards"
    args = render_cli(out, "--format", "webdataset", "--shard-size", "20", "--workers", "1")
    r = run_python(SECOND_SHARD_FAILS + f"sys.exit(main({args[2:]!r}))")
    assert r.returncode == 2 and "shard-000001.tar: No space left on device." in r.stderr, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["manifest", "render.json", "shard-000000.tar"]
    assert manifest_seeds(out, shards=True) == list(range(20))
    r = run_python(args)
    assert r.returncode == 0, r.stderr
    assert "rendered 28 images" in r.stdout
    assert sorted(p.name for p in out.glob("shard-*.tar")) == ["shard-000000.tar", "shard-000001.tar",
                                                                "shard-000002.tar"]
    rows = read_manifest(out)
    assert sorted(row["seed"] for row in rows) == list(range(COUNT))
    with tarfile.open(out / "shard-000002.tar") as tar:
        names = tar.getnames()
        assert names[:2] == ["seed0040.png", "seed0040.json"] and len(names) == 16
        recipe = json.loads(tar.extractfile("seed0047.json").read())
        image = Image.open(io.BytesIO(tar.extractfile("seed0047.png").read()))
        assert recipe["seeds"] == [47] and image.size == (64, 64)
    row = next(row for row in rows if row["seed"] == 47)
    assert (row["shard"], row["file"]) == ("shard-000002.tar", "seed0047.png")
    assert json.loads(row["recipe"]) == recipe


def test_unreachable_cluster_is_one_sentence(tmp_path):
    require_ray()
    r = run_python(render_cli(tmp_path / "faces", "--ray", "127.0.0.1:1"), timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip() == "error: cannot reach the Ray cluster at 127.0.0.1:1: Connection refused."


def test_without_ray_says_how_to_install_it(tmp_path):
    blocked = "import sys; sys.modules['ray'] = None; from stylegan.__main__ import main; "
    r = run_python(blocked + f"sys.exit(main({render_cli(tmp_path / 'faces')[2:]!r}))")
    assert r.returncode == 2
    assert r.stderr.strip() == 'error: Rendering needs Ray, an optional extra: pip install ".[scale]" (or pip ' \
                               'install "ray[data]").'


def test_seed_ranges_up_to_ten_million():
    from stylegan.render import RenderSettings
    from stylegan.settings import SettingsError
    s = RenderSettings(seeds="9999990-9999999, 0-9999989, 5")
    assert s.seeds == "0-9999999" and len(s.all_seeds()) == 10_000_000
    assert RenderSettings(seeds=[3, 1, 2, 7]).seeds == "1-3, 7"
    for bad, says in (("0-10000000", "at most 10,000,000"), ("9-3", "runs backwards"), ("x", "is not a seed"),
                      ("4294967296", "out of range")):
        with pytest.raises(SettingsError, match=says):
            RenderSettings(seeds=bad)


@pytest.mark.parametrize("args", [["--help"], ["render", "--help"]])
def test_help_imports_neither_torch_nor_ray(args):
    r = run_python(f"import sys; from stylegan.__main__ import main\ntry:\n    main({args!r})\nexcept SystemExit:\n"
                   "    pass\nprint(sorted(m for m in ('torch', 'ray') if m in sys.modules))")
    assert "render" in r.stdout and r.stdout.strip().endswith("[]"), r.stderr
