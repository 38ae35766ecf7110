"""TensorFlow-era checkpoints: the original StyleGAN (2019) and StyleGAN2-TF give NVIDIA's outputs.

Fixtures and tolerances: ../shared/fixtures/{stylegan1,stylegan2_tf}/README.md. Also: the
demos run on a 2019 model, and unusable TensorFlow files are refused with a sentence.
"""

import pickle
import sys
import types

import imageio.v3 as iio
import numpy as np
import pytest
import torch

import stylegan
from conftest import FIXTURES, run_python
from stylegan import demos
from stylegan.safe_pickle import Record, read_pickle
from test_fidelity import assert_close, converted, load_fixture  # noqa: F401 (a fixture)

STYLEGAN1 = FIXTURES / "stylegan1"
STYLEGAN2_TF = FIXTURES / "stylegan2_tf"
FIXTURE_FILES = sorted(STYLEGAN1.glob("*.pkl")) + sorted(STYLEGAN2_TF.glob("*.pkl"))


@pytest.mark.parametrize("fmt", ["pkl", "safetensors"])
@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: p.stem)
def test_matches_nvidias_tensorflow_outputs(path, fmt, converted, one_thread):
    G = load_fixture(path, fmt, converted)
    ref = np.load(path.with_suffix(".npz"))
    z = torch.from_numpy(ref["z"])
    c = torch.from_numpy(ref["c"]) if G.c_dim else None
    assert G.num_ws == int(ref["num_layers"])
    if path.parent == STYLEGAN1:
        assert G.family == "stylegan1"
        # The original truncates the first 8 ws unless told otherwise.
        truncated = {"ws_psi07_cutoff8": dict(truncation_psi=0.7),
                     "ws_psi05_all": dict(truncation_psi=0.5, truncation_cutoff=G.num_ws)}
        whole_network = "img_Gs_run_default"
    else:
        assert G.family == "stylegan2"
        truncated = {"ws_psi07": dict(truncation_psi=0.7),
                     "ws_psi05_cutoff": dict(truncation_psi=0.5, truncation_cutoff=int(ref["truncation_cutoff"]))}
        whole_network = "img_Gs_run_psi07"
    psi07 = next(iter(truncated))
    with torch.no_grad():
        ws = {"ws_psi1": G.mapping(z, c)}
        ws.update({name: G.mapping(z, c, **kwargs) for name, kwargs in truncated.items()})
        for name, value in ws.items():
            assert_close(value, ref[name], 1e-5)
            assert_close(G.synthesis(value, noise_mode="const"), ref[name.replace("ws_", "img_const_")], 1e-4)
        assert_close(G.synthesis(ws[psi07], noise_mode="none"), ref[psi07.replace("ws_", "img_none_")], 1e-4)
        mix = int(ref["mix_layer"])
        mixed = ws[psi07].clone()
        mixed[:, mix:] = ws[psi07].roll(-1, dims=0)[:, mix:]
        assert_close(mixed, ref["ws_mixed"], 1e-5)
        assert_close(G.synthesis(mixed, noise_mode="const"), ref["img_mixed"], 1e-4)
        assert_close(G(z, c, truncation_psi=0.7, noise_mode="const"), ref[whole_network], 1e-4)


def test_fused_upsampling_is_used_from_128_px():
    G = stylegan.load(STYLEGAN1 / "sg1_128_fused.pkl", device="cpu")
    kinds = {layer.resolution: layer.conv for layer in G.synthesis.layers[2::2]}
    assert kinds == {8: "nearest", 16: "nearest", 32: "nearest", 64: "nearest", 128: "fused"}


def test_convert_from_the_command_line(tmp_path):
    out = tmp_path / "sg1.safetensors"
    result = run_python(["-m", "stylegan", "convert", str(STYLEGAN1 / "sg1_32.pkl"), str(out)])
    assert result.returncode == 0, result.stderr
    original = stylegan.load(STYLEGAN1 / "sg1_32.pkl", device="cpu")
    copy = stylegan.load(out, device="cpu")
    assert copy.family == "stylegan1" and copy.config == original.config
    for key, value in original.state_dict().items():
        assert torch.equal(copy.state_dict()[key], value), key


def test_info_names_the_family_and_its_truncation():
    result = run_python(["-m", "stylegan", "info", str(STYLEGAN1 / "sg1_32.pkl")])
    assert result.returncode == 0, result.stderr
    assert "family:      stylegan1" in result.stdout and "num_ws:      8 (resolution of each: 4, 4, 8, 8," in result.stdout
    assert "psi acts on style inputs 0-7" in result.stdout


# -- files that must be refused

class _Network:
    """Stands in for dnnlib.tflib.network.Network when writing test pickles."""

    def __init__(self, state):
        self.state = state

    def __reduce__(self):
        return (_Network, (), self.state)

    def __setstate__(self, state):
        self.state = state


@pytest.fixture
def write_tf_pickle(tmp_path, monkeypatch):
    """Rewrite a fixture with a change to Gs's state: (fixture path, change(state)) -> new path."""
    module = types.ModuleType("dnnlib.tflib.network")
    module.Network = _Network
    _Network.__module__, _Network.__qualname__ = "dnnlib.tflib.network", "Network"
    for name in ("dnnlib", "dnnlib.tflib", "dnnlib.tflib.network"):
        monkeypatch.setitem(sys.modules, name, module)

    def as_networks(value):
        if isinstance(value, Record):
            return _Network({k: as_networks(v) for k, v in value.state.items()})
        if isinstance(value, dict):
            return {k: as_networks(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(as_networks(v) for v in value)
        return value

    def write(fixture, change):
        with open(fixture, "rb") as f:
            G, D, Gs = as_networks(read_pickle(f))
        change(Gs.state)
        path = tmp_path / f"changed-{fixture.name}"
        path.write_bytes(pickle.dumps((G, D, Gs)))
        return path
    return write


def set_variable(state, name, value):
    state["variables"] = [(n, value if n == name else v) for n, v in state["variables"]]


def synthesis(state):
    return state["components"]["synthesis"].state


def test_the_rewritten_fixture_still_loads(write_tf_pickle):
    # The writer itself changes nothing: so the refusals below come from the changes.
    copy = stylegan.load(write_tf_pickle(STYLEGAN1 / "sg1_32.pkl", lambda state: None), device="cpu")
    original = stylegan.load(STYLEGAN1 / "sg1_32.pkl", device="cpu")
    assert all(torch.equal(value, original.state_dict()[key]) for key, value in copy.state_dict().items())


def test_snapshot_during_progressive_growing_is_refused(write_tf_pickle):
    path = write_tf_pickle(STYLEGAN1 / "sg1_32.pkl",
                           lambda state: set_variable(synthesis(state), "lod", np.array(1.5, dtype=np.float32)))
    with pytest.raises(stylegan.LoadError, match=r"progressive growing \(lod 1.5"):
        stylegan.load(path)


@pytest.mark.parametrize("change, message", [
    (lambda s: synthesis(s).update(build_func_name="G_synthesis_stylegan_revised"), "G_synthesis_stylegan_revised"),
    (lambda s: s["static_kwargs"].update(use_instance_norm=False), "use_instance_norm=False"),
    (lambda s: synthesis(s)["variables"].append(("64x64/Conv0_up/weight", np.zeros(3, np.float32))),
     "variables we do not know: synthesis/64x64/Conv0_up/weight"),
    (lambda s: synthesis(s).update(variables=[v for v in synthesis(s)["variables"] if v[0] != "noise3"]),
     "'synthesis/noise3' is missing"),
    (lambda s: set_variable(synthesis(s), "4x4/Conv/weight", np.zeros((3, 3, 64, 5), np.float32)), "do not fit"),
])
def test_unsupported_networks_are_refused_with_a_sentence(write_tf_pickle, change, message):
    with pytest.raises(stylegan.LoadError, match=message):
        stylegan.load(write_tf_pickle(STYLEGAN1 / "sg1_32.pkl", change))


def test_stylegan2_tf_architecture_options_are_checked(write_tf_pickle):
    path = write_tf_pickle(STYLEGAN2_TF / "sg2tf_32_skip.pkl",
                           lambda s: s["static_kwargs"].update(architecture="resnet"))
    with pytest.raises(stylegan.LoadError, match="Skip/weight' is missing"):
        stylegan.load(path)


# -- the demos on a 2019 model

@pytest.fixture(scope="module")
def G1():
    G = stylegan.load(STYLEGAN1 / "sg1_32.pkl", device="cpu")
    # The fixture's random mapping gives nearly the same w for every seed (its weights are drawn
    # without the 1/lr_multiplier of training): scaled up, seeds give different images, so the
    # demos' outputs can be told apart.
    for i in range(G.mapping.num_layers):
        getattr(G.mapping, f"fc{i}").weight.mul_(100)
    return G


def test_demos_run_on_the_original_stylegan(G1, tmp_path, one_thread):
    result = demos.generate(G1, "0-3", psi=0.7)
    assert result.grid.size == (4 * 32, 32) and len({im.tobytes() for im in result.images}) == 4
    # Style mixing by the paper's resolutions: coarse = 4-8 px = ws 0-3.
    assert demos.mixing_presets(G1)["coarse"][:2] == (0, 4)
    mixed = demos.style_mix(G1, [1, 2], [3, 4, 5], layers="coarse", psi=0.7)
    assert mixed.grid.size == (4 * 32, 3 * 32) and len(mixed.images) == 6
    ws = demos.seeds_to_ws(G1, [1, 3], 0.7)
    want = ws[0].clone()
    want[:4] = ws[1][:4]
    with torch.no_grad():
        direct = G1.synthesis(want[None], noise_mode="const")
    assert np.abs(np.asarray(mixed.images[0], dtype=float) - demos.to_pil(direct)[0]).max() <= 1
    study = demos.noise_study(G1, 7, num_samples=4, layers="fine")
    assert study.extras["std_max"] > 0
    assert demos.noise_study(G1, 7, num_samples=4, layers="none").extras["std_max"] == 0
    path, recipe = demos.interpolation_video(G1, [1, 2], tmp_path / "walk.mp4", frames_per_transition=3, fps=10)
    assert iio.imread(path).shape == (6, 32, 32, 3) and recipe["frames"] == 6
