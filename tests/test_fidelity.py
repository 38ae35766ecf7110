"""Our generator gives NVIDIA's images for NVIDIA's weights (tolerances from the fixtures' README)."""

import numpy as np
import pytest
import torch

import stylegan
from conftest import HOSTILE, REFERENCE

FIXTURES = sorted(p.stem for p in REFERENCE.glob("*.npz"))

IMAGE_TOLERANCE = 1e-4  # the fixtures' README: every reference image, ada_32_uncond's included, is fp32


def assert_close(ours, ref, rel):
    ours = ours.detach().cpu().numpy() if isinstance(ours, torch.Tensor) else ours
    assert ours.shape == ref.shape
    err = np.abs(ours - ref).max()
    assert err <= rel * max(1.0, np.abs(ref).max()), f"max error {err:.3g}"


@pytest.fixture(scope="module", params=["pkl", "safetensors"])
def fmt(request):
    return request.param


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    return tmp_path_factory.mktemp("converted")


def load_fixture(path, fmt, converted):
    """The fixture, as it is or converted to our safetensors format first."""
    if fmt == "safetensors":
        out = converted / f"{path.stem}.safetensors"
        if not out.exists():
            stylegan.save_safetensors(stylegan.load(path, device="cpu"), out)
        path = out
    return stylegan.load(path, device="cpu")


@pytest.mark.parametrize("name", FIXTURES)
def test_matches_reference(name, fmt, converted):
    G = load_fixture(REFERENCE / f"{name}.pkl", fmt, converted)
    ref = np.load(REFERENCE / f"{name}.npz")
    z = torch.from_numpy(ref["z"])
    c = torch.from_numpy(ref["c"]) if G.c_dim else None
    cutoff = int(ref["truncation_cutoff"])
    image_tol = IMAGE_TOLERANCE
    with torch.no_grad():
        ws1 = G.mapping(z, c, truncation_psi=1)
        ws07 = G.mapping(z, c, truncation_psi=0.7)
        ws05 = G.mapping(z, c, truncation_psi=0.5, truncation_cutoff=cutoff)
        assert_close(ws1, ref["ws_psi1"], 1e-5)
        assert_close(ws07, ref["ws_psi07"], 1e-5)
        assert_close(ws05, ref["ws_psi05_cutoff"], 1e-5)
        assert_close(G.synthesis(ws1, noise_mode="const"), ref["img_const_psi1"], image_tol)
        assert_close(G.synthesis(ws07, noise_mode="const"), ref["img_const_psi07"], image_tol)
        assert_close(G.synthesis(ws05, noise_mode="const"), ref["img_const_psi05_cutoff"], image_tol)
        assert_close(G.synthesis(ws07, noise_mode="none"), ref["img_none_psi07"], image_tol)
        mix = int(ref["mix_layer"])
        ws_mixed = ws07.clone()
        ws_mixed[:, mix:] = ws07.roll(-1, dims=0)[:, mix:]
        assert_close(ws_mixed, ref["ws_mixed"], 1e-5)
        assert_close(G.synthesis(ws_mixed, noise_mode="const"), ref["img_mixed"], image_tol)
        assert_close(G(z, c, truncation_psi=0.7, noise_mode="const"), ref["img_const_psi07"], image_tol)
        if "transform_matrix_inv" in ref:
            G.synthesis.input.transform.copy_(torch.from_numpy(ref["transform_matrix_inv"]))
            assert_close(G.synthesis(ws07, noise_mode="const"), ref["img_transformed_psi07"], image_tol)


def test_seed_to_z_is_nvidias_convention():
    ref = np.load(REFERENCE / "sg2_32_uncond.npz")
    for seed, z in zip(ref["seeds"], ref["z"]):
        ours = stylegan.seed_to_z(int(seed), z.shape[0])
        assert ours.dtype == np.float32
        np.testing.assert_array_equal(ours, z)


def test_hostile_source_with_valid_weights_loads(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    monkeypatch.setenv("STYLEGAN_PWN_MARKER", str(marker))
    G = stylegan.load(HOSTILE / "hostile_source_valid_weights.pkl", device="cpu")
    ref = np.load(HOSTILE / "hostile_source_valid_weights.npz")
    with torch.no_grad():
        img = G(torch.from_numpy(ref["z"]), None, truncation_psi=1, noise_mode="const")
    assert_close(img, ref["img_const_psi1"], 1e-4)
    assert not marker.exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU (bench/cuda_check.py reports more)")
@pytest.mark.parametrize("name", FIXTURES)
def test_cuda_fp32_matches_reference(name):
    """On a GPU with every layer in fp32, the same tolerance as on the CPU: TF32 convolutions (on by
    default on recent GPUs) would miss it by ten times."""
    G = stylegan.load(REFERENCE / f"{name}.pkl", device="cuda")
    for module in G.modules():
        if hasattr(module, "use_fp16"):
            module.use_fp16 = False
    ref = np.load(REFERENCE / f"{name}.npz")
    with torch.no_grad():
        img = G.synthesis(torch.from_numpy(ref["ws_psi1"]).cuda(), noise_mode="const")
        assert_close(img, ref["img_const_psi1"], IMAGE_TOLERANCE)
        assert_close(G.synthesis(torch.from_numpy(ref["ws_mixed"]).cuda(), noise_mode="const"), ref["img_mixed"],
                     IMAGE_TOLERANCE)
    assert torch.backends.cudnn.allow_tf32  # PyTorch's default is given back after each call
