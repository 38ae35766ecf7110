"""The four demos as library functions: exact grids, noise statistics, videos, recipes."""

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from PIL import Image

import stylegan
from conftest import REFERENCE, tiny_generator
from stylegan import demos


@pytest.fixture(scope="module")
def G():
    return tiny_generator(32)


def pixels(image):
    return np.asarray(image).astype(np.int64)


def same_image(a, b):
    """Equal up to a flip of the last 8-bit level: batches of different sizes round differently."""
    return a.shape == b.shape and np.abs(a - b).max() <= 1


def direct(G, ws, noise_mode="const"):
    with torch.no_grad():
        return demos.to_pil(G.synthesis(ws, noise_mode=noise_mode, noise_seed=0))


# -- parsing

@pytest.mark.parametrize("text, seeds", [("0-3, 42", [0, 1, 2, 3, 42]), ("7", [7]), (" 5 ,6 ", [5, 6]),
                                         ("4294967295", [2 ** 32 - 1]), ([1, 2.0], [1, 2]), (3, [3])])
def test_parse_seeds(text, seeds):
    assert demos.parse_seeds(text) == seeds


@pytest.mark.parametrize("text, message", [("", "No seeds"), (",", "No seeds"), ("-1", "is not a seed"),
                                           ("1.5", "is not a seed"), ("4294967296", "out of range"),
                                           ("5-2", "backwards"), ("0-99", "at most 64"), ("a", "is not a seed"),
                                           ([1.5], "is not a seed"), ([-2], "out of range"), ([], "No seeds"),
                                           (None, "not a list of seeds"), (2.5, "not a list of seeds")])
def test_bad_seeds(text, message):
    with pytest.raises(demos.DemoError, match=message):
        demos.parse_seeds(text)


def test_layer_ranges():
    assert demos.parse_layer_range("2-5", 8) == (2, 5)
    assert demos.parse_layer_range((0, 8), 8) == (0, 8)
    for bad in ("3-9", "5-2", "x", "1-2-3"):
        with pytest.raises(demos.DemoError):
            demos.parse_layer_range(bad, 8)


# -- generate

def test_generate_matches_the_generator(G):
    result = demos.generate(G, "0-4", psi=0.7)
    ws = demos.seeds_to_ws(G, [0, 1, 2, 3, 4], 0.7)
    for got, want in zip(result.images, direct(G, ws)):
        assert same_image(pixels(got), pixels(want))
    rows, cols = demos.grid_shape(5)
    assert result.grid.size == (cols * 32, rows * 32)
    assert result.recipe["seeds"] == [0, 1, 2, 3, 4] and result.recipe["psi"] == 0.7


def test_generate_bad_input(G):
    for kwargs, message in [(dict(psi=2.5), r"outside \[-2, 2\]"), (dict(psi=float("nan")), "outside"),
                            (dict(class_idx=1), "unconditional"), (dict(noise_mode="loud"), "not one of"),
                            (dict(truncation_cutoff=99), "cutoff"), (dict(rotate=10), "StyleGAN3")]:
        with pytest.raises(demos.DemoError, match=message):
            demos.generate(G, "1", **kwargs)
    with pytest.raises(demos.DemoError, match="at most 4"):
        demos.generate(G, "0-5", max_images=4)


def test_conditional_classes():
    G = stylegan.load(REFERENCE / "sg2_32_cond10.pkl", device="cpu")
    with pytest.raises(demos.DemoError, match="conditional"):
        demos.generate(G, "1")
    with pytest.raises(demos.DemoError, match="classes 0 to 9"):
        demos.generate(G, "1", class_idx=10)
    assert len(demos.generate(G, "1, 2", class_idx=3).images) == 2


def test_stylegan3_translate_rotate():
    G = stylegan.load(REFERENCE / "sg3t_32.pkl", device="cpu")
    before = G.synthesis.input.transform.clone()
    plain = demos.generate(G, "0", psi=0.7).images[0]
    moved = demos.generate(G, "0", psi=0.7, translate=(0.1, -0.05), rotate=7).images[0]
    assert torch.equal(G.synthesis.input.transform, before)  # restored
    ref = np.load(REFERENCE / "sg3t_32.npz")
    np.testing.assert_allclose(np.linalg.inv(demos.make_transform((0.1, -0.05), 7)), ref["transform_matrix_inv"],
                               atol=1e-12)
    want = demos.to_pil(torch.from_numpy(ref["img_transformed_psi07"][:1]))[0]
    assert np.abs(pixels(moved) - pixels(want)).max() <= 1
    assert not np.array_equal(pixels(plain), pixels(moved))


# -- style mixing

def test_mixing_grid_geometry_and_cells(G):
    rows, cols = [1, 2, 3], [4, 5, 6, 7]
    result = demos.style_mix(G, rows, cols, layers="2-5", psi=0.7)
    R = G.img_resolution
    assert result.grid.size == ((4 + 1) * R, (3 + 1) * R)
    ws = {s: w for s, w in zip(rows + cols, demos.seeds_to_ws(G, rows + cols, 0.7))}
    grid = pixels(result.grid)
    assert (grid[:R, :R] == 255).all()  # blank corner
    for j, c in enumerate(cols):  # header row: the column seeds' faces
        assert same_image(grid[:R, (j + 1) * R:(j + 2) * R], pixels(direct(G, ws[c][None])[0]))
    for i, r in enumerate(rows):
        assert same_image(grid[(i + 1) * R:(i + 2) * R, :R], pixels(direct(G, ws[r][None])[0]))
        for j, c in enumerate(cols):
            mixed = ws[r].clone()
            mixed[2:5] = ws[c][2:5]
            cell = grid[(i + 1) * R:(i + 2) * R, (j + 1) * R:(j + 2) * R]
            assert same_image(cell, pixels(direct(G, mixed[None])[0]))


def test_mixing_empty_and_full_ranges(G):
    empty = demos.style_mix(G, [1, 2], [3], layers="0-0")
    full = demos.style_mix(G, [1, 2], [3], layers=(0, G.num_ws))
    ws = demos.seeds_to_ws(G, [1, 2, 3])
    for k, row_image in enumerate(direct(G, ws[:2])):
        assert same_image(pixels(empty.images[k]), pixels(row_image))
        assert same_image(pixels(full.images[k]), pixels(direct(G, ws[2:3])[0]))


def test_mixing_presets():
    G = tiny_generator(64)
    presets = demos.mixing_presets(G)
    assert presets["coarse"][:2] == (0, 3) and "4²-8²" in presets["coarse"][2]
    assert presets["middle"][:2] == (3, 7) and presets["fine"][:2] == (7, G.num_ws)
    G3 = stylegan.load(REFERENCE / "sg3r_32.pkl", device="cpu")
    p3 = demos.mixing_presets(G3)
    assert [p3[k][:2] for k in ("coarse", "middle", "fine")] == [(0, 5), (5, 11), (11, 16)]
    assert "not tied to resolutions" in p3["fine"][2]
    with pytest.raises(demos.DemoError, match="no 'fine' layers"):
        demos.style_mix(tiny_generator(32), [1], [2], layers="fine")


# -- noise

def high_frequency_share(images):
    """Share of the deviations' power (from the mean image) above half the Nyquist frequency."""
    x = np.stack([pixels(im).mean(axis=2) for im in images])
    dev = x - x.mean(axis=0)
    power = (np.abs(np.fft.fft2(dev)) ** 2).sum(axis=0)
    f = np.fft.fftfreq(x.shape[1])
    radius = np.hypot(*np.meshgrid(f, f))
    return power[radius > 0.25].sum() / power.sum()


def test_noise_none_gives_zero_deviation(G):
    result = demos.noise_study(G, 3, num_samples=4, layers="none")
    assert result.extras["std"].max() == 0
    assert len({pixels(im).tobytes() for im in result.images}) == 1


def test_noise_realisations_differ_only_locally(G):
    result = demos.noise_study(G, 3, num_samples=6, layers="all")
    assert result.extras["std"].max() > 0
    assert len({pixels(im).tobytes() for im in result.images}) == 6
    assert result.extras["heatmap"].size == (32, 32)
    assert len(result.extras["comparison"]) == 4


def test_fine_noise_is_high_frequency():
    G = tiny_generator(64)
    fine = demos.noise_study(G, 1, num_samples=8, layers="fine")
    coarse = demos.noise_study(G, 1, num_samples=8, layers="coarse")
    hf_fine, hf_coarse = high_frequency_share(fine.images), high_frequency_share(coarse.images)
    assert hf_fine > 3 * hf_coarse, (hf_fine, hf_coarse)


def test_noise_strength_scales_the_deviation(G):
    weak = demos.noise_study(G, 3, num_samples=6, strength=0.5)
    strong = demos.noise_study(G, 3, num_samples=6, strength=2.0)
    assert strong.extras["std"].mean() > 2 * weak.extras["std"].mean()


def test_noise_bad_input(G):
    with pytest.raises(demos.DemoError, match="from 2 to"):
        demos.noise_study(G, 1, num_samples=1)
    with pytest.raises(demos.DemoError, match="strength"):
        demos.noise_study(G, 1, strength=-1)
    with pytest.raises(demos.DemoError, match="outside this model's layers"):
        demos.noise_study(G, 1, layers="0-40")


def test_stylegan3_has_no_noise():
    G = stylegan.load(REFERENCE / "sg3t_32.pkl", device="cpu")
    with pytest.raises(demos.DemoError, match="has no noise inputs"):
        demos.noise_study(G, 1)


# -- video

# Measured on these frames: luma mean error 4.5 / 255, PSNR 31 dB (H.264, quality 8); a frame
# off by one in the sequence gives several times that error.
LUMA_MEAN_ERROR, LUMA_PSNR = 8, 26


def expected_frames(G, seeds, frames, space, easing, loop, psi=0.7):
    return torch.cat([ws for _, ws in demos.video_latents(G, seeds, frames, space, easing, loop, psi, None)])


@pytest.mark.parametrize("space, loop", [("z", True), ("w", False)])
def test_video_frames_match_the_generator(G, tmp_path, space, loop):
    seeds, per = [1, 2, 3], 4
    calls = []
    path, recipe = demos.interpolation_video(G, seeds, tmp_path / "walk.mp4", frames_per_transition=per, fps=10,
                                             space=space, loop=loop, progress=lambda d, t: calls.append((d, t)))
    transitions = 3 if loop else 2
    total = transitions * per + (0 if loop else 1)
    frames = iio.imread(path)
    assert frames.shape == (total, 32, 32, 3) and recipe["frames"] == total
    assert calls[-1] == (total, total)
    want = np.stack([pixels(im) for im in direct(G, expected_frames(G, seeds, per, space, "smooth", loop))])
    # yuv420p keeps colour at half resolution, which these random 32 px textures do not survive;
    # the luma is kept at full resolution: compare that.
    luma = np.array([0.299, 0.587, 0.114])
    error = np.abs(frames.astype(np.float64) @ luma - want @ luma)
    psnr = 10 * np.log10(255 ** 2 / (error ** 2).mean())
    assert error.mean() < LUMA_MEAN_ERROR and psnr > LUMA_PSNR, (error.mean(), psnr)
    # The first frame is the first keyframe; an open walk ends on the last keyframe.
    ws = demos.seeds_to_ws(G, seeds, 0.7)
    assert torch.allclose(expected_frames(G, seeds, per, space, "smooth", loop)[0], ws[0], atol=1e-5)
    if not loop:
        assert torch.allclose(expected_frames(G, seeds, per, space, "smooth", loop)[-1], ws[-1], atol=1e-5)


def test_gif(G, tmp_path):
    path, recipe = demos.interpolation_video(G, [1, 2], tmp_path / "walk.gif", frames_per_transition=3)
    assert iio.imread(path).shape[0] == 6


def test_video_bad_input_leaves_nothing(G, tmp_path):
    for kwargs, message in [(dict(seeds=[1]), "at least two"), (dict(frames_per_transition=0), "at least 1"),
                            (dict(frames_per_transition=1000), "at most 1800"), (dict(space="q"), "space"),
                            (dict(easing="bouncy"), "Easing"), (dict(fps=0), "Frames per second"),
                            (dict(out_path=tmp_path / "walk.avi"), ".mp4 or .gif"),
                            (dict(out_path=tmp_path / "missing" / "walk.mp4"), "does not exist")]:
        args = dict(seeds=[1, 2], out_path=tmp_path / "walk.mp4", frames_per_transition=2) | kwargs
        with pytest.raises(demos.DemoError, match=message):
            demos.interpolation_video(G, **args)
    assert list(tmp_path.rglob("*")) == []


def test_interrupted_video_leaves_nothing(G, tmp_path):
    def stop(done, total):
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        demos.interpolation_video(G, [1, 2, 3], tmp_path / "walk.mp4", frames_per_transition=8, progress=stop)
    assert list(tmp_path.iterdir()) == []


# -- recipes

@pytest.mark.parametrize("make, output", [
    (lambda G: demos.generate(G, "1, 5, 9", psi=0.6, noise_mode="random", noise_seed=3), "grid"),
    (lambda G: demos.generate(G, "1, 5, 9", psi=0.6), "image:1"),
    (lambda G: demos.style_mix(G, "1, 2", "3", layers="1-4"), "grid"),
    (lambda G: demos.noise_study(G, 4, num_samples=3, layers="fine"), "comparison_grid"),
])
def test_recipe_regenerates_the_identical_image(G, tmp_path, make, output):
    result = make(G)
    image = result.grid if output == "grid" else (
        result.images[1] if output == "image:1" else result.extras[output])
    path = demos.save_png(image, tmp_path / "out.png", dict(result.recipe, output=output))
    recipe = demos.read_recipe(path)
    assert recipe["model_sha256"] == G.sha256
    assert np.array_equal(pixels(demos.run_recipe(G, recipe)), pixels(Image.open(path)))


def test_damaged_recipes(tmp_path):
    Image.new("RGB", (4, 4)).save(tmp_path / "plain.png")
    with pytest.raises(demos.DemoError, match="no stylegan recipe"):
        demos.read_recipe(tmp_path / "plain.png")
    (tmp_path / "junk.png").write_bytes(b"not a png")
    with pytest.raises(demos.DemoError, match="not a readable PNG"):
        demos.read_recipe(tmp_path / "junk.png")
    from PIL import PngImagePlugin
    info = PngImagePlugin.PngInfo()
    info.add_text(demos.RECIPE_KEY, "{broken")
    Image.new("RGB", (4, 4)).save(tmp_path / "broken.png", pnginfo=info)
    with pytest.raises(demos.DemoError, match="damaged"):
        demos.read_recipe(tmp_path / "broken.png")
