"""stylegan video --ray: a video's frames rendered on a real local Ray (two workers), encoded here,
against the same video made in one process; and the refusals (an unreachable cluster, no Ray).
Ray takes seconds to start: one run on Ray serves the comparisons."""

import json
import os

import imageio.v3 as iio
import numpy as np
import pytest

from conftest import run_python
from test_render import require_ray

WORKERS = 2
VIDEO = ["video", "--seeds", "1,2,3", "--frames", "5", "--space", "z", "--no-loop", "--fps", "10"]  # 11 frames

# The real CLI, with the frames and the recipe that reach the encoder (demos.encode_video_steps,
# the seam both ways of making a video end in) saved beside the video as .npy and .json.
RECORDED = """
import json, os, sys
import numpy as np
import torch
from stylegan import demos
from stylegan.__main__ import main
if THREADS:
    torch.set_num_threads(THREADS)
encode = demos.encode_video_steps
def recording(batches, total, out_path, fps, recipe):
    seen = []
    def passed_on():
        for done, frames in batches:
            seen.extend(frames)
            yield done, frames
    result = yield from encode(passed_on(), total, out_path, fps, recipe)
    np.save(str(out_path) + ".npy", np.stack(seen))
    with open(str(out_path) + ".json", "w") as f:
        json.dump(recipe, f)
    return result
demos.encode_video_steps = recording
sys.exit(main(ARGS))
"""


def recorded_run(args, threads=0):
    return run_python(RECORDED.replace("THREADS", str(threads)).replace("ARGS", repr([str(a) for a in args])))


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """The same video made on Ray (two workers) and in one process with the torch threads each worker had."""
    require_ray()
    folder = tmp_path_factory.mktemp("videos")
    on_ray = recorded_run([*VIDEO, "--workers", WORKERS, "--out", folder / "ray.mp4"])
    threads = max(1, len(os.sched_getaffinity(0)) // WORKERS)  # a local Ray has one CPU per core
    here = recorded_run([*VIDEO, "--out", folder / "here.mp4"], threads=threads)
    return dict(folder=folder, on_ray=on_ray, here=here)


def test_video_on_ray_has_the_frames_and_recipe_of_the_video_made_here(videos):
    folder, on_ray, here = videos["folder"], videos["on_ray"], videos["here"]
    assert here.returncode == 0, here.stderr
    assert on_ray.returncode == 0, on_ray.stderr
    assert "wrote " + str(folder / "ray.mp4") + " (11 frames)" in on_ray.stdout
    assert "100%" in on_ray.stderr and "frame" in on_ray.stderr  # the progress bar
    # Before the encoder: the same pixels, frame by frame.
    frames_on_ray, frames_here = np.load(folder / "ray.mp4.npy"), np.load(folder / "here.mp4.npy")
    assert frames_on_ray.shape == frames_here.shape == (11, 64, 64, 3)
    assert len({frame.tobytes() for frame in frames_here}) == 11  # a walk: every frame differs
    differ = [i for i, (a, b) in enumerate(zip(frames_on_ray, frames_here)) if not np.array_equal(a, b)]
    assert differ == [], f"frames {differ} differ"  # one pass cut in two changes a few values by one level
    recipe = json.loads((folder / "ray.mp4.json").read_text())
    assert recipe == json.loads((folder / "here.mp4.json").read_text())
    assert recipe["kind"] == "video" and recipe["frames"] == 11 and recipe["batch_size"] == 4
    # After it: the same video, carrying that recipe.
    assert np.array_equal(iio.imread(folder / "ray.mp4"), iio.imread(folder / "here.mp4"))
    assert json.dumps(recipe).encode() in (folder / "ray.mp4").read_bytes()
    assert sorted(p.name for p in folder.iterdir()) == ["here.mp4", "here.mp4.json", "here.mp4.npy", "ray.mp4",
                                                        "ray.mp4.json", "ray.mp4.npy"]  # no temporary file left


def test_video_on_an_unreachable_cluster_is_one_sentence(tmp_path):
    require_ray()
    r = run_python(["-m", "stylegan", *VIDEO, "--ray", "127.0.0.1:1", "--out", str(tmp_path / "walk.mp4")],
                   timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip() == "error: cannot reach the Ray cluster at 127.0.0.1:1: Connection refused."
    assert list(tmp_path.iterdir()) == []


def test_video_on_ray_without_ray_says_how_to_install_it(tmp_path):
    args = [*VIDEO, "--ray", "--out", str(tmp_path / "walk.mp4")]
    blocked = "import sys; sys.modules['ray'] = None; from stylegan.__main__ import main; "
    r = run_python(blocked + f"sys.exit(main({args!r}))")
    assert r.returncode == 2
    assert r.stderr.strip() == 'error: Rendering needs Ray, an optional extra: pip install ".[scale]" (or pip ' \
                               'install "ray[data]").'
    assert list(tmp_path.iterdir()) == []
