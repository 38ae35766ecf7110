"""The generator's own invariants, and the convert / info commands."""

import platform

import numpy as np
import pytest
import torch

import stylegan
from conftest import REFERENCE, ROOT, run_python


@pytest.fixture(scope="module")
def G():
    return stylegan.load(REFERENCE / "sg2_32_uncond.pkl", device="cpu")


@pytest.fixture(scope="module")
def z(G):
    return torch.from_numpy(np.stack([stylegan.seed_to_z(s, G.z_dim) for s in (1, 2, 3)]))


def test_call_surface(G):
    assert (G.z_dim, G.c_dim, G.w_dim, G.num_ws, G.img_resolution, G.img_channels) == (32, 0, 32, 8, 32, 3)
    assert G.mapping.w_avg.shape == (32,)
    assert G.synthesis.ws_resolutions == [4, 8, 8, 16, 16, 32, 32, 32]
    assert len(G.synthesis.noise_layers) == G.num_ws - 1


def test_noise_none_is_deterministic(G, z):
    with torch.no_grad():
        a = G(z, None, noise_mode="none")
        b = G(z, None, noise_mode="none")
    assert torch.equal(a, b)


def test_random_noise_with_seed_repeats(G, z):
    ws = G.mapping(z, None)
    with torch.no_grad():
        a = G.synthesis(ws, noise_mode="random", noise_seed=7)
        b = G.synthesis(ws, noise_mode="random", noise_seed=7)
        c = G.synthesis(ws, noise_mode="random", noise_seed=8)
        single = G.synthesis(ws[1:2], noise_mode="random", noise_seed=7)
    assert torch.equal(a, b)
    assert (a - c).abs().max() > 1e-3
    # An image's noise does not depend on its batch; alone, it convolves with its own modulated weight.
    assert torch.allclose(single, a[1:2], atol=1e-5)


def test_cpu_batches_in_parts_give_the_whole_batch_result(G, z):
    ws = G.mapping(z, None)
    with torch.no_grad():
        whole = {mode: G.synthesis(ws, noise_mode=mode, noise_seed=[4, 5, 6]) for mode in ("const", "random")}
        G.synthesis.cpu_batch_pixels = 2 * G.img_resolution ** 2  # parts of 2 images, then 1
        try:
            parts = {mode: G.synthesis(ws, noise_mode=mode, noise_seed=[4, 5, 6]) for mode in ("const", "random")}
        finally:
            G.synthesis.cpu_batch_pixels = 2 * 512 ** 2
    for mode in ("const", "random"):
        assert parts[mode].shape == (3, 3, 32, 32)
        assert torch.allclose(parts[mode], whole[mode], atol=1e-5)  # each image keeps its own noise seed


def test_stylegan3_cpu_batches_in_parts_give_the_whole_batch_result():
    G = stylegan.load(REFERENCE / "sg3r_32.pkl", device="cpu")
    ws = G.mapping(torch.from_numpy(np.stack([stylegan.seed_to_z(s, G.z_dim) for s in (1, 2, 3)])), None)
    with torch.no_grad():
        whole = G.synthesis(ws)
        G.synthesis.cpu_batch_pixels = 32 ** 2  # one image at a time
        parts = G.synthesis(ws)
    assert parts.shape == (3, 3, 32, 32)
    assert torch.allclose(parts, whole, atol=1e-5)


def test_noise_strength_per_layer(G, z):
    ws = G.mapping(z, None)
    n = len(G.synthesis.noise_layers)
    with torch.no_grad():
        none = G.synthesis(ws, noise_mode="none")
        off = G.synthesis(ws, noise_mode="const", noise_strength=[0.0] * n)
        on = G.synthesis(ws, noise_mode="const")
        doubled = G.synthesis(ws, noise_mode="const", noise_strength=2.0)
        last_only = G.synthesis(ws, noise_mode="const", noise_strength=[0.0] * (n - 1) + [1.0])
    assert torch.equal(none, off)
    assert (on - none).abs().max() > 1e-3 and (doubled - on).abs().max() > 1e-3
    assert 0 < (last_only - none).abs().max() < (on - none).abs().max() + 1e-6


def test_truncation(G, z):
    with torch.no_grad():
        ws1 = G.mapping(z, None)
        ws_psi1 = G.mapping(z, None, truncation_psi=1, truncation_cutoff=4)
        ws0 = G.mapping(z, None, truncation_psi=0)
        ws0_cut = G.mapping(z, None, truncation_psi=0, truncation_cutoff=3)
    assert torch.equal(ws1, ws_psi1)
    assert torch.allclose(ws0, G.mapping.w_avg.expand_as(ws0))
    assert torch.allclose(ws0_cut[:, :3], G.mapping.w_avg.expand(3, 3, -1))
    assert torch.equal(ws0_cut[:, 3:], ws1[:, 3:])


def test_conditional_needs_class():
    G = stylegan.load(REFERENCE / "sg2_32_cond10.pkl", device="cpu")
    z = torch.zeros(1, G.z_dim)
    with pytest.raises(ValueError, match="conditional"):
        G.mapping(z, None)
    c = torch.nn.functional.one_hot(torch.tensor([3]), 10).float()
    assert G(z, c).shape == (1, 3, 32, 32)


def test_default_device_is_cpu_here(G):
    assert stylegan.default_device().type in ("cpu", "cuda", "mps")
    assert next(G.parameters()).device.type == "cpu"


def test_cli_info_and_convert(tmp_path):
    src = REFERENCE / "sg2_32_cond10.pkl"
    info = run_python(["-m", "stylegan", "info", str(src)])
    assert info.returncode == 0, info.stderr
    assert "stylegan2" in info.stdout and "32 px" in info.stdout and "10 classes" in info.stdout
    assert stylegan.loading.file_sha256(src) in info.stdout
    out = tmp_path / "cond.safetensors"
    conv = run_python(["-m", "stylegan", "convert", str(src), str(out)])
    assert conv.returncode == 0, conv.stderr
    a, b = stylegan.load(src, device="cpu"), stylegan.load(out, device="cpu")
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    info2 = run_python(["-m", "stylegan", "info", str(out)])
    assert "10 classes" in info2.stdout


def test_cli_convert_to_unwritable_place(tmp_path):
    result = run_python(["-m", "stylegan", "convert", str(REFERENCE / "sg2_16_gray.pkl"),
                         str(tmp_path / "no" / "such" / "dir" / "x.safetensors")])
    assert result.returncode == 2 and "cannot write" in result.stderr
    assert not list(tmp_path.rglob("*.safetensors*"))


def test_cached_weight_terms_follow_the_weights():
    """Frozen models reuse weight-derived terms (fast path); they must never go stale, and
    training (weights that need gradients) must get gradients through them."""
    from conftest import tiny_generator
    from stylegan.stylegan2 import modulated_conv2d
    G = tiny_generator()
    ws = G.mapping(torch.randn(2, G.z_dim), None)
    layer = G.synthesis.b16.conv0
    x = torch.randn(2, layer.weight.shape[1], 8, 8)
    styles = layer.affine(ws[:, 0])
    with torch.inference_mode():
        cached = layer(x, ws[:, 0])
    simple = torch.nn.functional.leaky_relu(
        modulated_conv2d(x, layer.weight, styles, padding=1, up=2, resample_filter=layer.resample_filter)
        + layer.noise_const * layer.noise_strength + layer.bias.reshape(1, -1, 1, 1), 0.2) * 2 ** 0.5
    assert torch.allclose(cached, simple, atol=1e-5)
    with torch.no_grad():
        layer.weight.mul_(-3)  # changed in place, as load_state_dict does
        changed = layer(x, ws[:, 0])
    copy = tiny_generator()
    copy.load_state_dict(G.state_dict())
    with torch.no_grad():
        assert torch.allclose(changed, copy.synthesis.b16.conv0(x, ws[:, 0]), atol=1e-6)
        assert not torch.allclose(changed, cached, atol=1e-3)
    layer.weight.requires_grad_(True)
    layer(x, ws[:, 0]).square().sum().backward()
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0


REUSE_CODE = """
import resource, sys, threading, torch
from conftest import tiny_generator
import stylegan
if sys.argv[2] == "reuse":
    assert stylegan.reuse_freed_memory()
G = tiny_generator(resolution=512).eval()  # 8 channels at 512 px: feature maps of 50 MB for 6 images
G.synthesis.cpu_batch_pixels = 6 * 512 ** 2  # all 6 at once
ws = G.mapping(torch.randn(6, G.z_dim), None)
result = {}

def later_synthesis():  # in a worker thread, as the app computes
    with torch.inference_mode():
        G.synthesis(ws, noise_mode="const")
        faulted_mb = []
        for _ in range(4):  # the heap may take a call or two more to settle, as on a CI machine once
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            result["images"] = G.synthesis(ws, noise_mode="const")
            faulted_mb.append((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) * 4096 / 2 ** 20)
        result["faulted_mb"] = min(faulted_mb)

thread = threading.Thread(target=later_synthesis)
thread.start()
thread.join()
torch.save(result, sys.argv[1])
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="reuse_freed_memory tunes glibc's malloc")
def test_reused_memory_spares_page_faults_and_changes_no_pixel(tmp_path):
    results = {}
    for mode in ("default", "reuse"):
        out = tmp_path / f"{mode}.pt"
        proc = run_python(["-c", REUSE_CODE, str(out), mode], env={"PYTHONPATH": f"{ROOT}:{ROOT / 'tests'}"})
        assert proc.returncode == 0, proc.stderr
        results[mode] = torch.load(out, weights_only=True)
    # glibc maps each block above 32 MB afresh: hundreds of MB of new pages per call by default.
    assert results["default"]["faulted_mb"] > 200
    assert results["reuse"]["faulted_mb"] < 0.1 * results["default"]["faulted_mb"]
    assert torch.equal(results["default"]["images"], results["reuse"]["images"])
