"""Faults while serving: full disks, models switched under running requests."""

import json
import os
import socket
import threading
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image

import app
from conftest import REFERENCE, ROOT, run_python
from stylegan import demos

# The disk fills up while a video is written: a file-size limit makes every write past it fail
# (EFBIG), in Python and in the ffmpeg process alike.
FULL_DISK = """
import json, os, resource, signal, sys
import torch
from conftest import tiny_generator
from stylegan import demos
torch.set_num_threads(1)
out = sys.argv[1]
G = tiny_generator(resolution=64)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (3000, 3000))
try:
    demos.interpolation_video(G, [1, 2, 3], out, frames_per_transition=10)
    print(json.dumps({"error": None}))
except demos.DemoError as e:
    print(json.dumps({"error": str(e)}))
"""


@pytest.mark.parametrize("name", ["walk.mp4", "walk.gif"])
def test_full_disk_during_a_video(tmp_path, name):
    out = tmp_path / "videos" / name
    out.parent.mkdir()
    result = run_python(["-c", FULL_DISK, str(out)], env={"PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}"})
    assert result.returncode == 0, result.stderr
    error = json.loads(result.stdout.strip().splitlines()[-1])["error"]
    assert error and error.startswith(f"Cannot write {out}")
    assert list(out.parent.iterdir()) == []  # nothing half-written left, visible or hidden


def test_mp4_completeness_check(tmp_path):
    from conftest import tiny_generator
    path, _ = demos.interpolation_video(tiny_generator(), [1, 2], tmp_path / "walk.mp4", frames_per_transition=3)
    assert demos.mp4_is_complete(path)
    data = path.read_bytes()
    for cut in (len(data) - 1, len(data) // 2, 8):
        (tmp_path / "cut.mp4").write_bytes(data[:cut])
        assert not demos.mp4_is_complete(tmp_path / "cut.mp4")


def test_written_files_get_the_users_usual_permissions(tmp_path):
    """Images and videos are written beside their final name and renamed, but not as private files."""
    from PIL import Image
    from conftest import tiny_generator
    old = os.umask(0o022)
    try:
        png = demos.save_png(Image.new("RGB", (4, 4)), tmp_path / "face.png", {"seed": 1})
        video, _ = demos.interpolation_video(tiny_generator(), [1, 2], tmp_path / "walk.mp4", frames_per_transition=3)
    finally:
        os.umask(old)
    assert [oct(path.stat().st_mode & 0o777) for path in (png, video)] == ["0o644", "0o644"]


def test_switching_models_does_not_change_running_requests(tmp_path, one_thread):
    gray, colour = str(REFERENCE / "sg2_16_gray.pkl"), str(REFERENCE / "sg2_32_uncond.pkl")
    studio = app.build_app(colour, "cpu", app.SourcePolicy([REFERENCE])).studio
    studio.store.keep = 1  # the next model evicts the running request's model from the store
    want = studio.generate(gray, "0-3")[0]
    started, results = threading.Event(), {}

    def slow_video():
        def progress(done, total):
            started.set()
        G = studio.model(gray)
        results["video"] = demos.interpolation_video(G, "0-3", tmp_path / "walk.mp4", frames_per_transition=10,
                                                     progress=progress)[0]
    thread = threading.Thread(target=slow_video)
    thread.start()
    assert started.wait(60)
    studio.generate(colour, "0")  # another visitor switches model meanwhile
    thread.join()
    assert list(studio.store.models) == [str(Path(colour).resolve())]
    frames = iio.imread(results["video"])
    assert frames.shape == (40, 16, 16, 3)  # the gray 16 px model's frames, not the colour 32 px one's
    first = np.asarray(Image.open(want[0]).convert("RGB"), dtype=float)
    assert np.abs(frames[0].astype(float) - first).mean() < 6  # and its face (seed 0), through H.264


def test_old_results_are_removed_and_an_unwritable_output_folder_is_a_sentence(tmp_path, monkeypatch):
    studio = app.Studio(None, None, None, tmp_path)
    old, recent = tmp_path / "old", tmp_path / "recent"
    for folder in (old, recent):
        folder.mkdir()
        (folder / "grid.png").write_bytes(b"png")
    two_hours_ago = os.path.getmtime(recent) - 2 * app.OUTPUT_MAX_AGE
    os.utime(old, (two_hours_ago, two_hours_ago))
    new = studio.output_folder()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["recent", new.name])

    studio.output_dir = tmp_path / "gone"
    with pytest.raises(app.gr.Error, match="cannot write its results"):
        studio.output_folder()


def test_cancelled_video_stops_and_leaves_no_files(tmp_path, monkeypatch, one_thread):
    from gradio_client import Client
    model = str(REFERENCE / "sg2_32_uncond.pkl")
    blocks = app.build_app(model, "cpu", app.SourcePolicy([REFERENCE]))
    blocks.studio.output_dir = tmp_path
    G = blocks.studio.model(model)
    batches = []

    def slow_batch(module, args):  # a video long enough to cancel halfway
        batches.append(time.monotonic())
        time.sleep(0.05)

    hook = G.synthesis.register_forward_pre_hook(slow_batch)
    app.queue(blocks)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    blocks.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        client = Client(f"http://127.0.0.1:{port}", verbose=False)
        job = client.submit(model, "1, 2, 3, 4, 5", 120, 24, "w", "linear", True, 0.7, -1,
                            api_name="/video")  # 600 frames: 150 batches
        deadline = time.monotonic() + 60
        while len(batches) < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list(tmp_path.rglob(".interpolation*.mp4*"))  # the unfinished video, while rendering
        job.cancel()
        while time.monotonic() < deadline and time.monotonic() - batches[-1] < 2:
            time.sleep(0.1)  # until no batch has started for two seconds
        assert len(batches) < 100  # it stopped early ...
        assert list(tmp_path.rglob("*")) == []  # ... and removed its unfinished file and folder
    finally:
        hook.remove()
        blocks.close()
