"""rosinality's stylegan2-pytorch .pt checkpoints: the images of its own code, read without running any."""

import argparse
import subprocess

import numpy as np
import pytest
import torch

import stylegan
from conftest import FIXTURES, ROOT, run_python
from test_fidelity import assert_close

SHARED = FIXTURES / "rosinality" / "ros_32_train"  # training layout, no latent_avg
OURS = ROOT / "tests" / "fixtures" / "rosinality" / "ros_16_converted"  # converter layout, latent_avg


def bare(tmp_path):
    """Our fixture saved as a bare g_ema state dict, and in torch's legacy (pre-1.6) format."""
    data = torch.load(OURS.with_suffix(".pt"), weights_only=True)
    path = tmp_path / "bare.pt"
    torch.save(data["g_ema"], path)
    legacy = tmp_path / "legacy.pt"
    torch.save(data, legacy, _use_new_zipfile_serialization=False)
    return path, legacy


def check_synthesis(G, ref):
    """What any truncation centre gives: ws at psi 1 and the images of given ws."""
    with torch.no_grad():
        ws = G.mapping(torch.from_numpy(ref["z"]), None, truncation_psi=1)
        assert_close(ws, ref["ws_psi1"], 1e-5)
        assert_close(G.synthesis(ws, noise_mode="const"), ref["img_const_psi1"], 1e-4)
        for ws_key, img_key in [("ws_psi07", "img_const_psi07"), ("ws_mixed", "img_mixed")]:
            assert_close(G.synthesis(torch.from_numpy(ref[ws_key]), noise_mode="const"), ref[img_key], 1e-4)


def check_truncation(G, ref):
    """With the stored latent_avg as the centre, psi 0.7 from z matches too."""
    assert_close(G.mapping.w_avg, ref["latent_avg"], 1e-5)
    with torch.no_grad():
        z = torch.from_numpy(ref["z"])
        assert_close(G.mapping(z, None, truncation_psi=0.7), ref["ws_psi07"], 1e-5)
        assert_close(G(z, None, truncation_psi=0.7, noise_mode="const"), ref["img_const_psi07"], 1e-4)


def test_training_checkpoint_matches_its_code():
    G = stylegan.load(SHARED.with_suffix(".pt"), device="cpu")
    ref = np.load(SHARED.with_suffix(".npz"))
    assert (G.img_resolution, G.z_dim, G.num_ws) == (32, 64, 8)
    check_synthesis(G, ref)
    assert "training checkpoint" in G.checkpoint_format
    assert "mean of 4096 seeded mapping samples" in G.truncation_centre
    # The estimated centre is near the fixture's (itself a mean of 4096 other samples), and fixed.
    assert (G.mapping.w_avg - torch.from_numpy(ref["latent_avg"])).abs().max() < 0.1
    again = stylegan.load(SHARED.with_suffix(".pt"), device="cpu")
    assert torch.equal(G.mapping.w_avg, again.mapping.w_avg)


def test_converted_checkpoint_matches_its_code():
    G = stylegan.load(OURS.with_suffix(".pt"), device="cpu")
    ref = np.load(OURS.with_suffix(".npz"))
    assert "converter's file" in G.checkpoint_format and "latent_avg stored" in G.truncation_centre
    check_synthesis(G, ref)
    check_truncation(G, ref)


def test_bare_state_dict_and_legacy_format(tmp_path):
    ref = np.load(OURS.with_suffix(".npz"))
    path, legacy = bare(tmp_path)
    G = stylegan.load(path, device="cpu")
    assert "bare g_ema" in G.checkpoint_format and "no latent_avg" in G.truncation_centre
    check_synthesis(G, ref)
    G = stylegan.load(legacy, device="cpu")
    check_synthesis(G, ref)
    check_truncation(G, ref)


def test_convert_to_safetensors_keeps_images_and_origin(tmp_path):
    out = tmp_path / "ros.safetensors"
    stylegan.save_safetensors(stylegan.load(SHARED.with_suffix(".pt"), device="cpu"), out)
    G = stylegan.load(out, device="cpu")
    check_synthesis(G, np.load(SHARED.with_suffix(".npz")))
    assert "safetensors" in G.checkpoint_format and "no latent_avg" in G.truncation_centre


def test_info_names_the_format():
    result = run_python(["-m", "stylegan", "info", str(SHARED.with_suffix(".pt"))])
    assert result.returncode == 0, result.stderr
    assert "format:      rosinality stylegan2-pytorch .pt (training checkpoint" in result.stdout
    assert "mean of 4096 seeded mapping samples" in result.stdout


class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (subprocess.call, (["touch", self.marker],))


def test_hostile_torch_file_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    data = torch.load(OURS.with_suffix(".pt"), weights_only=True)
    for name, legacy in [("zip.pt", False), ("legacy.pt", True)]:
        path = tmp_path / name
        torch.save({**data, "args": Payload(str(marker))}, path, _use_new_zipfile_serialization=not legacy)
        with pytest.raises(stylegan.LoadError, match=r"refused, the file asks to run \w+\.call, which") as e:
            stylegan.load(path, device="cpu")
        assert "\n" not in str(e.value)
    assert not marker.exists()


def test_namespace_is_never_constructed(tmp_path):
    """argparse.Namespace comes back as a plain record: a checkpoint naming it does not get argparse's class."""
    from stylegan.safe_pickle import Namespace, read_torch_file
    data = read_torch_file(SHARED.with_suffix(".pt"))
    assert type(data["args"]) is Namespace and data["args"].state["size"] == 32


def test_args_that_contradict_the_weights(tmp_path):
    data = torch.load(OURS.with_suffix(".pt"), weights_only=True)
    path = tmp_path / "odd.pt"
    torch.save({**data, "args": argparse.Namespace(size=256, latent=32, n_mlp=2)}, path)
    with pytest.raises(stylegan.LoadError, match=r"args say size = 256 but its g_ema has size = 16\.$"):
        stylegan.load(path, device="cpu")


@pytest.mark.parametrize("damage", ["truncated", "missing weight", "wrong shape"])
def test_damaged_files_are_one_sentence(tmp_path, damage):
    data = torch.load(OURS.with_suffix(".pt"), weights_only=True)
    path = tmp_path / "damaged.pt"
    if damage == "truncated":
        path.write_bytes(OURS.with_suffix(".pt").read_bytes()[:40000])
    else:
        g = dict(data["g_ema"])
        if damage == "missing weight":
            del g["convs.1.conv.weight"]
        else:
            g["convs.1.conv.weight"] = torch.zeros(1, 3, 3, 3, 3)
        torch.save({**data, "g_ema": g}, path)
    with pytest.raises(stylegan.LoadError) as e:
        stylegan.load(path, device="cpu")
    message = str(e.value)
    assert message.startswith(str(path)) and "\n" not in message and "Error" not in message


def test_swagan_is_named(tmp_path):
    data = torch.load(OURS.with_suffix(".pt"), weights_only=True)
    path = tmp_path / "swagan.pt"
    torch.save({**data, "args": argparse.Namespace(arch="swagan", size=16)}, path)
    with pytest.raises(stylegan.LoadError, match=r"holds a SWAGAN generator \(wavelets\), which we do not read"):
        stylegan.load(path, device="cpu")
