"""ONNX export: every family's graph, run by onnxruntime, gives our images (batch sizes other than the traced one too)."""

import numpy as np
import pytest
import torch

import stylegan
from conftest import FIXTURES, REFERENCE, run_python, tiny_generator
from stylegan.export import ExportError, export_onnx
from test_fidelity import assert_close

ort = pytest.importorskip("onnxruntime")

MODELS = {
    "stylegan1": FIXTURES / "stylegan1" / "sg1_32.pkl",
    "stylegan1 fused up-sampling": FIXTURES / "stylegan1" / "sg1_128_fused.pkl",
    "stylegan2 skip": REFERENCE / "sg2_32_uncond.pkl",
    "stylegan2 conditional": REFERENCE / "sg2_32_cond10.pkl",
    "stylegan2 resnet": "resnet",
    "stylegan2 orig": "orig",
    "stylegan2 TensorFlow conditional": FIXTURES / "stylegan2_tf" / "sg2tf_32_cond4.pkl",
    "stylegan3-T": REFERENCE / "sg3t_32.pkl",
    "stylegan3-R": REFERENCE / "sg3r_32.pkl",
    "rosinality": FIXTURES / "rosinality" / "ros_32_train.pt",
    "bundled": None,
}


def model(name):
    source = MODELS[name]
    if source in ("resnet", "orig"):
        return tiny_generator(architecture=source)
    return stylegan.load(source, device="cpu")


def inputs(G, n=3):
    z = torch.from_numpy(np.stack([stylegan.seed_to_z(seed, G.z_dim) for seed in range(n)]))
    c = torch.eye(G.c_dim)[torch.arange(n) % G.c_dim] if G.c_dim else None
    return z, c


def run(path, feeds):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["image"], {k: v.numpy() for k, v in feeds.items()})[0]


@pytest.mark.parametrize("name", MODELS)
def test_export_matches_torch(name, tmp_path, one_thread):
    G = model(name)
    z, c = inputs(G)
    cutoff = G.default_truncation_cutoff
    with torch.no_grad():
        ws = G.mapping(z, c, truncation_psi=0.7, truncation_cutoff=cutoff)
        ours = G.synthesis(ws, noise_mode="const")
    whole = export_onnx(G, tmp_path / "g.onnx", psi=0.7)
    assert whole == {"z": ["batch", G.z_dim], **({"c": ["batch", G.c_dim]} if G.c_dim else {})}
    assert_close(run(tmp_path / "g.onnx", {"z": z, **({"c": c} if G.c_dim else {})}), ours.numpy(), 1e-4)
    export_onnx(G, tmp_path / "s.onnx", synthesis_only=True)
    assert_close(run(tmp_path / "s.onnx", {"ws": ws}), ours.numpy(), 1e-4)
    assert_close(run(tmp_path / "s.onnx", {"ws": ws[:1]}), ours[:1].numpy(), 1e-4)


def test_without_noise(tmp_path):
    G = stylegan.load(REFERENCE / "sg2_32_uncond.pkl", device="cpu")
    ref = np.load(REFERENCE / "sg2_32_uncond.npz")
    export_onnx(G, tmp_path / "s.onnx", synthesis_only=True, noise_mode="none")
    assert_close(run(tmp_path / "s.onnx", {"ws": torch.from_numpy(ref["ws_psi07"])}), ref["img_none_psi07"], 1e-4)


def test_random_noise_is_one_sentence_and_writes_nothing(tmp_path):
    with pytest.raises(ExportError, match=r"^noise 'random' cannot be exported, .*use const or none\.$"):
        export_onnx(tiny_generator(), tmp_path / "g.onnx", noise_mode="random")
    assert not list(tmp_path.iterdir())


def test_cli(tmp_path):
    out = tmp_path / "g.onnx"
    result = run_python(["-m", "stylegan", "export-onnx", str(REFERENCE / "sg2_16_gray.pkl"), str(out), "--psi", "0.5"])
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"wrote {out} (input z [batch, 16]; output image [batch, 1, 16, 16])\n"
    G = stylegan.load(REFERENCE / "sg2_16_gray.pkl", device="cpu")
    z, _ = inputs(G, 2)
    with torch.no_grad():
        assert_close(run(out, {"z": z}), G(z, None, truncation_psi=0.5, noise_mode="const").numpy(), 1e-4)
    for args, words in [([str(tmp_path / "g.png")], "must be an .onnx file"),
                        ([str(tmp_path / "no" / "g.onnx")], "does not exist"),
                        ([str(out), "--psi", "7"], "outside [-2, 2]")]:
        result = run_python(["-m", "stylegan", "export-onnx", str(REFERENCE / "sg2_16_gray.pkl"), *args])
        assert result.returncode == 2 and words in result.stderr and result.stderr.count("\n") == 1, result.stderr
