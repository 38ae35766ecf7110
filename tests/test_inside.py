"""stylegan.inside: feature layers, their maps, the pictures made of them, and ToRGB contributions."""

import itertools

import numpy as np
import pytest
import torch
from conftest import tiny_generator
from PIL import Image

from stylegan import demos, inside, loading, stylegan1, stylegan2, stylegan3
from stylegan.settings import SettingsError

pytestmark = pytest.mark.usefixtures("one_thread")

MODELS = {
    "bundled": None,
    "sg2": "reference/sg2_32_uncond.pkl",
    "sg2tf": "stylegan2_tf/sg2tf_32_skip.pkl",
    "sg3t": "reference/sg3t_32.pkl",
    "sg3r": "reference/sg3r_32.pkl",
    "sg1": "stylegan1/sg1_32.pkl",
}
SKIP_MODELS = ["bundled", "sg2", "sg2tf"]


@pytest.fixture(scope="module")
def models(fixtures_dir):
    cache = {}

    def get(key):
        if key not in cache:
            path = MODELS[key]
            cache[key] = loading.load(None if path is None else fixtures_dir / path, device="cpu")
        return cache[key]
    return get


def face(G, seed=3):
    return demos.seeds_to_ws(G, [seed], psi=0.7)


def manual_feature_maps(G, ws):
    """Every feature layer's output, by running the synthesis layers one by one here."""
    s, out = G.synthesis, []
    with torch.inference_mode():
        if isinstance(s, stylegan2.SynthesisNetwork):
            assert {b.architecture for b in s.blocks} != {"resnet"}  # resnet adds a skip path after conv1
            x = None
            for k, layer in enumerate(s.noise_layers):
                if x is None:
                    x = s.b4.const.unsqueeze(0)
                x = layer(x, ws[:, k], noise_mode="const")
                out.append(x.clone())
        elif isinstance(s, stylegan3.SynthesisNetwork):
            x = s.input(ws[:, 0])
            out.append(x.clone())
            for k, name in enumerate(s.layer_names[:-1]):
                x = getattr(s, name)(x, ws[:, k + 1])
                out.append(x.clone())
        else:
            x = s.const.unsqueeze(0)
            for k, layer in enumerate(s.layers):
                x = layer(x, ws[:, k], noise_mode="const")
                out.append(x.clone())
    return [x[0] for x in out]


@pytest.mark.parametrize("key", list(MODELS))
def test_feature_layers_match_the_modules(models, key):
    G = models(key)
    s = G.synthesis
    layers = inside.feature_layers(G)
    assert [info.index for info in layers] == list(range(len(layers)))
    assert len({info.name for info in layers}) == len(layers)
    for info in layers:
        assert s.get_submodule(info.name) is info.module
        if info.name == "layers.0":  # StyleGAN's constant layer has no convolution
            assert info.channels == info.module.bias.shape[0] == s.const.shape[0]
        else:
            assert info.channels == info.module.weight.shape[0]
        assert not isinstance(info.module, stylegan2.ToRGBLayer)
        assert not getattr(info.module, "is_torgb", False)
    resolutions = [info.resolution for info in layers]
    if isinstance(s, stylegan3.SynthesisNetwork):
        assert layers[0].name == "input" and layers[0].module is s.input
        assert [info.name for info in layers[1:]] == s.layer_names[:-1]
        assert resolutions == [int(s.input.size[1])] + [int(getattr(s, n).out_size[1]) for n in s.layer_names[:-1]]
        # Sizes grow to the margin-padded sampling rate, then the last two layers crop to the image.
        assert resolutions[-1] == G.img_resolution < max(resolutions)
    else:
        assert resolutions == sorted(resolutions)
        assert resolutions[0] == 4 and resolutions[-1] == G.img_resolution
        expected = s.noise_layers if isinstance(s, stylegan2.SynthesisNetwork) else list(s.layers)
        assert [info.module for info in layers] == expected
    if isinstance(s, stylegan2.SynthesisNetwork):
        assert layers[0].name == "b4.conv1" and layers[1].name == "b8.conv0" and layers[-1].name.endswith(".conv1")
        assert all(info.name == f"b{info.resolution}.conv{0 if info.module.up > 1 else 1}" for info in layers)
    if isinstance(s, stylegan1.SynthesisNetwork):
        assert [info.name for info in layers] == [f"layers.{i}" for i in range(G.num_ws)]


@pytest.mark.parametrize("key", ["sg2", "sg3t", "sg1"])
def test_feature_maps_are_what_the_layers_compute(models, key):
    """Each layer's captured maps equal a layer-by-layer forward, with the layer's shape, and the
    hooks leave the image unchanged and are gone afterwards."""
    G = models(key)
    ws = face(G)
    with torch.inference_mode():
        before = G.synthesis(ws, noise_mode="const")
    expected = manual_feature_maps(G, ws)
    layers = inside.feature_layers(G)
    assert len(expected) == len(layers)
    for info, want in zip(layers, expected):
        got = inside.feature_maps(G, ws, info.index)
        assert got.shape == (info.channels, info.resolution, info.resolution)
        assert got.dtype == torch.float32 and not got.is_inference()
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    # The last layer by name too.
    torch.testing.assert_close(inside.feature_maps(G, ws, layers[-1].name), expected[-1], rtol=1e-5, atol=1e-5)
    with torch.inference_mode():
        after = G.synthesis(ws, noise_mode="const")
    assert torch.equal(before, after)
    assert all(not m._forward_hooks for m in G.modules())


def test_first_stylegan2_layer_is_4x4(models):
    G = models("sg2")
    maps = inside.feature_maps(G, face(G), 0)
    assert maps.shape == (G.synthesis.b4.conv1.weight.shape[0], 4, 4)


def test_noise_mode_reaches_the_layer():
    G = tiny_generator()
    ws = face(G)
    const = inside.feature_maps(G, ws, "b8.conv1")
    assert torch.equal(const, inside.feature_maps(G, ws, "b8.conv1", noise_mode="const"))
    assert not torch.allclose(const, inside.feature_maps(G, ws, "b8.conv1", noise_mode="none"))


def test_unknown_layers_and_batches_are_refused(models):
    G = models("sg2")
    with pytest.raises(SettingsError, match="no layer named"):
        inside.feature_maps(G, face(G), "b999.conv0")
    with pytest.raises(SettingsError, match="0 to 6"):
        inside.feature_maps(G, face(G), 7)
    with pytest.raises(ValueError, match="one face"):
        inside.feature_maps(G, demos.seeds_to_ws(G, [1, 2]), 0)


def test_channel_grid_shows_the_strongest_channels():
    torch.manual_seed(0)
    maps = torch.randn(40, 6, 5) * torch.rand(40, 1, 1) * 3 + torch.randn(40, 1, 1)
    image, chosen = inside.channel_grid(maps, count=16)
    strength = maps.abs().mean(dim=(1, 2))
    assert chosen == torch.argsort(strength, descending=True)[:16].tolist()
    assert all(strength[a] >= strength[b] for a, b in itertools.pairwise(chosen))
    assert image.mode == "RGB" and image.size == (4 * 5, 4 * 6)  # 4 x 4 cells of W x H
    # Each cell is its own channel min..max through the colour map: darkest at its minimum,
    # brightest at its maximum.
    pixels = np.asarray(image)
    for cell, c in enumerate(chosen):
        r, q = divmod(cell, 4)
        block = pixels[r * 6:(r + 1) * 6, q * 5:(q + 1) * 5]
        lo, hi = np.unravel_index(int(maps[c].argmin()), (6, 5)), np.unravel_index(int(maps[c].argmax()), (6, 5))
        assert (block[lo] == demos.colormap(np.array(0.0))).all()
        assert (block[hi] == demos.colormap(np.array(1.0))).all()

    image, chosen = inside.channel_grid(maps[:3], count=16, cell_size=20)
    assert sorted(chosen) == [0, 1, 2] and image.size == (3 * 20, 20)


def test_rgb_projection_follows_the_principal_components():
    """Channels mixing three spatial patterns of clearly different strengths: red, green and blue
    follow the strongest, second and third pattern, whatever the order of the channels."""
    torch.manual_seed(1)
    h = w = 24
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    patterns = torch.stack([xx * 9, yy * 3, xx * yy])  # uncorrelated over the grid, variances far apart
    mixing = torch.linalg.qr(torch.randn(12, 3))[0]  # orthonormal columns: the pattern variances survive
    maps = torch.einsum("ck,khw->chw", mixing, patterns) + 0.01 * torch.randn(12, h, w)
    image = inside.rgb_projection(maps)
    assert image.mode == "RGB" and image.size == (w, h)
    rgb = np.asarray(image).astype(np.float64)
    for k in range(3):
        corr = np.corrcoef(rgb[..., k].ravel(), patterns[k].numpy().ravel())[0, 1]
        assert abs(corr) > 0.95, (k, corr)
    again = np.asarray(inside.rgb_projection(maps[torch.randperm(12)])).astype(int)
    assert np.abs(again - rgb).max() <= 1  # the sign convention does not depend on the channel order
    assert np.array_equal(np.asarray(inside.rgb_projection(maps)), np.asarray(image))


@pytest.mark.parametrize("key", SKIP_MODELS)
def test_torgb_contributions_add_up_to_the_image(models, key):
    G = models(key)
    s = G.synthesis
    assert isinstance(s, stylegan2.SynthesisNetwork) and {b.architecture for b in s.blocks} == {"skip"}
    ws = face(G)
    parts = inside.torgb_contributions(G, ws)
    assert [r for r, _ in parts] == s.block_resolutions
    for _, y in parts:
        assert y.shape == (1, G.img_channels, G.img_resolution, G.img_resolution)
    with torch.inference_mode():
        image = G.synthesis(ws, noise_mode="const")
    torch.testing.assert_close(sum(y for _, y in parts), image, rtol=0, atol=1e-5)
    # Every resolution adds something: none of the parts is zero.
    assert all(float(y.abs().max()) > 1e-3 for _, y in parts)


@pytest.mark.parametrize("architecture", ["resnet", "orig"])
def test_torgb_contributions_refused_without_skip(architecture):
    G = tiny_generator(architecture=architecture)
    with pytest.raises(inside.NotAvailable, match=f"skip architecture; this model's is {architecture}"):
        inside.torgb_contributions(G, face(G))
    result = inside.look_inside(G, face(G), len(inside.feature_layers(G)) - 1)
    assert result["torgb"] is None and result["torgb_peaks"] is None and architecture in result["torgb_reason"]


@pytest.mark.parametrize("key", ["sg3t", "sg1"])
def test_torgb_contributions_refused_for_other_families(models, key):
    G = models(key)
    with pytest.raises(SettingsError, match="only in StyleGAN2 models"):
        inside.torgb_contributions(G, face(G))


@pytest.mark.parametrize("key", list(MODELS))
def test_look_inside_every_family(models, key):
    G = models(key)
    layers = inside.feature_layers(G)
    info = layers[len(layers) // 2]
    ws = face(G)
    result = inside.look_inside(G, ws, info.name, count=9)
    assert result["layer"] == info
    assert len(result["channels"]) == 9 and len(set(result["channels"])) == 9
    strengths = inside.channel_strengths(inside.feature_maps(G, ws, info.index))
    assert result["channels"] == np.argsort(-strengths, kind="stable")[:9].tolist()
    assert result["strengths"] == sorted(result["strengths"], reverse=True)
    rows, cols = demos.grid_shape(9)
    cell = result["grid"].size[0] // cols
    assert result["grid"].size == (cols * cell, rows * cell) and cell >= inside.MIN_SIDE
    assert min(result["rgb"].size) >= inside.MIN_SIDE and min(result["image"].size) >= inside.MIN_SIDE
    assert isinstance(result["image"], Image.Image) and result["image"].size[0] % G.img_resolution == 0
    if key in SKIP_MODELS:
        assert result["torgb_reason"] is None
        assert [r for r, _ in result["torgb"]] == G.synthesis.block_resolutions
        assert all(min(p.size) >= inside.MIN_SIDE for _, p in result["torgb"])
        parts = inside.torgb_contributions(G, ws)
        assert result["torgb_peaks"] == pytest.approx([float(y.abs().max()) for _, y in parts])
    else:
        assert result["torgb"] is None and "StyleGAN2" in result["torgb_reason"]
