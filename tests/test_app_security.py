"""What a visitor of a shared app can and cannot make it do: which model sources it reads,
how large an upload it takes, how much memory one request may ask for."""

import os
import socket
import urllib.request
import uuid
from pathlib import Path

import gradio as gr
import pytest

import app
from conftest import FIXTURES, REFERENCE, ROOT
from stylegan import demos, loading

MODEL = str(REFERENCE / "sg2_32_uncond.pkl")


def test_private_app_reads_only_allowed_folders(tmp_path):
    policy = app.SourcePolicy([REFERENCE])
    assert policy.check(MODEL) == str(Path(MODEL).resolve())  # the real file, links followed
    bundled = str((ROOT / "checkpoints" / "offline-faces-64.safetensors").resolve())
    assert policy.check(bundled) == bundled  # checkpoints/ is always allowed
    escapes = ["/etc/passwd", str(REFERENCE / ".." / "hostile" / "malicious_exec.pkl"), str(tmp_path / "x.pkl"),
               "~/.ssh/id_rsa", os.path.relpath("/etc/hostname")]
    for source in escapes:
        with pytest.raises(gr.Error, match="Local models are read only from"):
            policy.check(source)
    (tmp_path / "inside").mkdir()
    (tmp_path / "inside" / "escape.pkl").symlink_to("/etc/passwd")
    with pytest.raises(gr.Error, match="read only from"):  # a link inside an allowed folder leads out of it
        app.SourcePolicy([tmp_path / "inside"]).check(str(tmp_path / "inside" / "escape.pkl"))


def test_public_app_takes_no_typed_paths_or_urls():
    public = app.SourcePolicy([REFERENCE], public=True)
    for source in (MODEL, "https://example.com/model.pkl", "http://127.0.0.1:8080/admin.pkl"):
        with pytest.raises(gr.Error, match="This public app loads models from its list"):
            public.check(source)
    assert public.check("hf://someone/faces/model.pkl") == "hf://someone/faces/model.pkl"
    assert public.check("bundled") == "bundled"
    public.trusted_files.add(REFERENCE.joinpath("sg2_16_gray.pkl").resolve())  # as an upload does
    assert public.check(str(REFERENCE / "sg2_16_gray.pkl")).endswith("sg2_16_gray.pkl")
    trusting = app.SourcePolicy([REFERENCE], public=True, allow_typed=True)
    assert trusting.check(MODEL) == str(Path(MODEL).resolve()) and trusting.check("https://example.com/m.pkl")


def test_public_app_in_the_handlers():
    studio = app.build_app(MODEL, "cpu", app.SourcePolicy([], public=True)).studio
    with pytest.raises(gr.Error, match="public app"):
        studio.generate(str(REFERENCE / "sg2_16_gray.pkl"), "1")
    images, *_ = studio.generate(MODEL, "1")  # the model it was launched with
    assert len(images) == 1


def test_memory_budget_refuses_before_running():
    G = loading.load(MODEL, device="cpu")
    small, large = demos.estimate_memory(G, 1, 1), demos.estimate_memory(G, 32, 4)
    assert 0 < small < large
    studio = app.build_app(MODEL, "cpu", app.SourcePolicy([FIXTURES]), memory_budget_mb=1).studio
    with pytest.raises(gr.Error, match=r"would need about .* GB of memory, more than the 0.0 GB allowed"):
        studio.generate(MODEL, "0-31")
    # A video's frames leave memory as they are made, so its batches shrink to fit; one frame of the
    # bundled 64 px model does not fit 1 MB.
    with pytest.raises(gr.Error, match="GB of memory"):
        list(studio.video(str(ROOT / "checkpoints" / "offline-faces-64.safetensors"), "1, 2", 3, 10, "z", "linear",
                          False, 0.7, -1))
    # Every pass needs some tens of MB whatever its size (planner.bytes_per_pass): with room for
    # them, small requests run.
    roomy = app.build_app(MODEL, "cpu", app.SourcePolicy([FIXTURES]), memory_budget_mb=40).studio
    images, *_ = roomy.generate(MODEL, "0")
    assert len(images) == 1
    # A 1024 px StyleGAN2 (no weights needed to estimate): 32 faces at batch 4 fit the default budget.
    with __import__("torch").device("meta"):
        big = loading.FAMILIES["stylegan2"](z_dim=512, c_dim=0, w_dim=512, img_resolution=1024, img_channels=3,
                                            channel_base=32768, channel_max=512)
    assert demos.estimate_memory(big, 32, 4) < app.DEFAULT_MEMORY_BUDGET_MB * 2 ** 20
    app.build_app(MODEL, "cpu", app.SourcePolicy([FIXTURES]))


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _upload(url, name, data):
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(url + "/gradio_api/upload", data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code


def test_uploads_above_the_limit_are_refused():
    blocks = app.build_app(MODEL, "cpu", app.SourcePolicy([FIXTURES]))
    port = _free_port()
    options = app.launch_options(app.parse_args(["--port", str(port), "--max-upload-mb", "1"]), blocks)
    blocks.launch(prevent_thread_lock=True, quiet=True, **options)
    try:
        url = f"http://127.0.0.1:{port}"
        assert _upload(url, "small.pkl", b"x" * 1000) == 200
        assert _upload(url, "large.pkl", b"x" * (2 << 20)) == 413
    finally:
        blocks.close()
