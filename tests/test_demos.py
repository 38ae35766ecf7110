"""The four demos as library functions: exact grids, noise statistics, videos, recipes."""

import json

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from PIL import Image

import stylegan
from conftest import REFERENCE, tiny_generator
from stylegan import demos


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def G():
    return tiny_generator(32)


@pytest.fixture(scope="module")
def G_ref():
    return stylegan.load(REFERENCE / "sg2_32_uncond.pkl", device="cpu")


@pytest.fixture(scope="module")
def G_faces():
    """The bundled 64 px face model: smooth, photo-like images, as H.264 is made for."""
    return stylegan.load(None, device="cpu")


def pixels(image):
    return np.asarray(image).astype(np.int64)


def direct(G, ws, noise_mode="const"):
    """The generator's own output for ws, one image at a time, as the demos convert it."""
    with torch.no_grad():
        return [demos.to_pil(G.synthesis(w[None], noise_mode=noise_mode, noise_seed=0))[0] for w in ws]


# -- parsing

@pytest.mark.parametrize("text, seeds", [("0-3, 42", [0, 1, 2, 3, 42]), ("7", [7]), (" 5 ,6 ", [5, 6]),
                                         ("2..4", [2, 3, 4]), ("4294967295", [2 ** 32 - 1]), ([1, 2.0], [1, 2]),
                                         (3, [3]), (np.int64(9), [9])])
def test_parse_seeds(text, seeds):
    assert demos.parse_seeds(text) == seeds


@pytest.mark.parametrize("text, message", [("", "No seeds"), (",", "No seeds"), ("-1", "is not a seed"),
                                           ("1.5", "is not a seed"), ("4294967296", "out of range"),
                                           ("9" * 5000, "out of range"), ("٣", "is not a seed"),
                                           ("5-2", "backwards"), ("0-99", "at most 64"), ("a", "is not a seed"),
                                           ("1,,x", "is not a seed"), ([1.5], "is not a seed"),
                                           ([-2], "out of range"), ([], "No seeds"), ([True], "is not a seed"),
                                           (None, "not a list of seeds"), (2.5, "not a list of seeds")])
def test_bad_seeds(text, message):
    with pytest.raises(demos.DemoError, match=message):
        demos.parse_seeds(text)


def test_layer_ranges():
    assert demos.parse_layer_range("2-5", 8) == (2, 5)
    assert demos.parse_layer_range("3:3", 8) == (3, 3)
    assert demos.parse_layer_range((0, 8), 8) == (0, 8)
    for bad in ("3-9", "5-2", "x", "1-2-3", "-1-2", "1" * 40 + "-2"):
        with pytest.raises(demos.DemoError):
            demos.parse_layer_range(bad, 8)


# -- generate

def test_generate_matches_the_generator(G):
    result = demos.generate(G, "0-4", psi=0.7, batch_size=1)
    ws = demos.seeds_to_ws(G, [0, 1, 2, 3, 4], 0.7)
    for got, want in zip(result.images, direct(G, ws)):
        assert np.array_equal(pixels(got), pixels(want))
    rows, cols = demos.grid_shape(5)
    assert (rows, cols) == (2, 4) and result.grid.size == (cols * 32, rows * 32)
    for k, image in enumerate(result.images):
        cell = pixels(result.grid)[(k // 4) * 32:(k // 4 + 1) * 32, (k % 4) * 32:(k % 4 + 1) * 32]
        assert np.array_equal(cell, pixels(image))
    assert result.recipe["seeds"] == [0, 1, 2, 3, 4] and result.recipe["psi"] == 0.7
    # batches round the last 8-bit level differently at most
    batched = demos.generate(G, "0-4", psi=0.7, batch_size=4)
    assert max(np.abs(pixels(a) - pixels(b)).max() for a, b in zip(batched.images, result.images)) <= 1


def test_generate_bad_input(G):
    for kwargs, message in [(dict(psi=2.5), r"outside \[-2, 2\]"), (dict(psi=-2.01), r"outside \[-2, 2\]"),
                            (dict(psi=float("nan")), "outside"), (dict(psi=True), "outside"),
                            (dict(class_idx=1), "unconditional"), (dict(noise_mode="loud"), "not one of"),
                            (dict(truncation_cutoff=99), "cutoff"), (dict(rotate=10), "StyleGAN3"),
                            (dict(noise_seed=-1), "Noise seed"), (dict(noise_seed="x"), "Noise seed"),
                            (dict(batch_size=0), "Batch size"), (dict(translate_x="1"), "Translate"),
                            (dict(rotate=float("inf")), "Translate")]:
        with pytest.raises(demos.DemoError, match=message):
            demos.generate(G, "1", **kwargs)
    with pytest.raises(demos.DemoError, match="at most 4"):
        demos.generate(G, "0-5", max_images=4)


def test_conditional_classes():
    G = stylegan.load(REFERENCE / "sg2_32_cond10.pkl", device="cpu")
    with pytest.raises(demos.DemoError, match="This model is conditional"):
        demos.generate(G, "1")
    with pytest.raises(demos.DemoError, match="classes 0 to 9"):
        demos.generate(G, "1", class_idx=10)
    result = demos.generate(G, "1, 2", class_idx=np.int64(3))
    assert len(result.images) == 2
    assert json.loads(json.dumps(result.recipe))["class_idx"] == 3  # numpy values do not break the PNG recipe
    other = demos.generate(G, "1, 2", class_idx=4)
    assert not np.array_equal(pixels(result.grid), pixels(other.grid))


def test_grayscale_model(tmp_path):
    G = stylegan.load(REFERENCE / "sg2_16_gray.pkl", device="cpu")
    faces = demos.generate(G, "1-3")
    assert faces.images[0].mode == "L" and faces.grid.size == (3 * 16, 16)
    noise = demos.noise_study(G, 1, num_samples=3)
    assert noise.grid.mode == "L" and noise.extras["comparison_grid"].size == (4 * 16, 16)
    path = demos.save_png(noise.grid, tmp_path / "gray.png", dict(noise.recipe, output="grid"))
    assert np.array_equal(pixels(demos.run_recipe(G, demos.read_recipe(path))), pixels(Image.open(path)))


def test_stylegan3_translate_rotate():
    G = stylegan.load(REFERENCE / "sg3t_32.pkl", device="cpu")
    before = G.synthesis.input.transform.clone()
    plain = demos.generate(G, "0", psi=0.7).images[0]
    moved = demos.generate(G, "0", psi=0.7, translate_x=0.1, translate_y=-0.05, rotate=7).images[0]
    assert torch.equal(G.synthesis.input.transform, before)  # restored
    ref = np.load(REFERENCE / "sg3t_32.npz")
    np.testing.assert_allclose(np.linalg.inv(demos.make_transform((0.1, -0.05), 7)), ref["transform_matrix_inv"],
                               atol=1e-12)
    want = demos.to_pil(torch.from_numpy(ref["img_transformed_psi07"][:1]))[0]
    assert np.abs(pixels(moved) - pixels(want)).max() <= 1
    assert not np.array_equal(pixels(plain), pixels(moved))


def test_concurrent_transforms_do_not_leak_into_other_requests(one_thread):
    import threading
    G = stylegan.load(REFERENCE / "sg3t_32.pkl", device="cpu")
    plain = pixels(demos.generate(G, "0", psi=0.7).images[0])
    moved = pixels(demos.generate(G, "0", psi=0.7, rotate=90).images[0])
    seen, stop = [], threading.Event()

    def rotate_repeatedly():
        while not stop.is_set():
            seen.append(np.array_equal(pixels(demos.generate(G, "0", psi=0.7, rotate=90).images[0]), moved))
    other = threading.Thread(target=rotate_repeatedly)
    other.start()
    try:
        for _ in range(15):
            assert np.array_equal(pixels(demos.generate(G, "0", psi=0.7).images[0]), plain)
    finally:
        stop.set()
        other.join()
    assert seen and all(seen)


# -- style mixing

def test_mixing_grid_geometry_and_cells(G):
    rows, cols = [1, 2, 3], [4, 5, 6, 7]
    result = demos.style_mix(G, rows, cols, layers="2-5", psi=0.7, batch_size=1)
    R = G.img_resolution
    assert result.grid.size == ((4 + 1) * R, (3 + 1) * R)  # (width, height)
    ws = dict(zip(rows + cols, demos.seeds_to_ws(G, rows + cols, 0.7)))
    grid = pixels(result.grid)

    def cell(i, j):
        return grid[i * R:(i + 1) * R, j * R:(j + 1) * R]

    assert (cell(0, 0) == 255).all()  # blank corner
    for j, c in enumerate(cols):  # header row: the column seeds' faces
        assert np.array_equal(cell(0, j + 1), pixels(direct(G, ws[c][None])[0]))
    for i, r in enumerate(rows):  # header column: the row seeds' faces
        assert np.array_equal(cell(i + 1, 0), pixels(direct(G, ws[r][None])[0]))
        for j, c in enumerate(cols):
            mixed = ws[r].clone()
            mixed[2:5] = ws[c][2:5]
            assert np.array_equal(cell(i + 1, j + 1), pixels(direct(G, mixed[None])[0]))
            assert np.array_equal(cell(i + 1, j + 1), pixels(result.images[i * len(cols) + j]))
    assert result.extras["layers"] == (2, 5) and result.recipe["layers"] == [2, 5]


def test_mixing_empty_and_full_ranges(G):
    empty = demos.style_mix(G, [1, 2], [3], layers="0-0", psi=1.0, batch_size=1)
    full = demos.style_mix(G, [1, 2], [3], layers=(0, G.num_ws), psi=1.0, batch_size=1)
    ws = demos.seeds_to_ws(G, [1, 2, 3])
    rows, col = direct(G, ws[:2]), direct(G, ws[2:3])[0]
    assert not np.array_equal(pixels(rows[0]), pixels(col))
    for k, row_image in enumerate(rows):
        assert np.array_equal(pixels(empty.images[k]), pixels(row_image))
        assert np.array_equal(pixels(full.images[k]), pixels(col))


def test_mixing_bad_input(G):
    with pytest.raises(demos.DemoError, match="outside this model's layers 0-8"):
        demos.style_mix(G, [1], [2], layers="3-9")
    with pytest.raises(demos.DemoError, match="3 x 4 cells"):
        demos.style_mix(G, "1-3", "4-7", max_images=10)
    with pytest.raises(demos.DemoError, match="not a layer range"):
        demos.style_mix(G, [1], [2], layers="everything")


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
    """Share of the deviations' power (from the mean image) above half the Nyquist frequency.

    White noise puts about 80% of its power there (the corners of the frequency square);
    anything smoothed by upsampling, very little.
    """
    x = np.stack([pixels(im.convert("RGB")).mean(axis=2) for im in images])
    dev = x - x.mean(axis=0)
    power = (np.abs(np.fft.fft2(dev)) ** 2).sum(axis=0)
    f = np.fft.fftfreq(x.shape[1])
    radius = np.hypot(*np.meshgrid(f, f))
    return power[radius > 0.25].sum() / power.sum()


@pytest.mark.parametrize("kwargs", [dict(layers="none"), dict(layers="all", strength=0), dict(layers="2-2")])
def test_no_noise_gives_zero_deviation(G, kwargs):
    result = demos.noise_study(G, 3, num_samples=5, **kwargs)  # 5: batches of 4 and 1
    assert result.extras["std"].max() == 0 and result.extras["std_max"] == 0
    assert len({pixels(im).tobytes() for im in result.images}) == 1


def test_noise_realisations_differ(G):
    result = demos.noise_study(G, 3, num_samples=6, layers="all", psi=1.0)
    assert result.extras["std"].shape == (32, 32) and result.extras["std"].min() > 0
    assert len({pixels(im).tobytes() for im in result.images}) == 6
    assert result.extras["heatmap"].size == (32, 32)
    assert result.grid.size == (4 * 32, 2 * 32)  # 6 samples and the heat map
    heat_cell = pixels(result.grid)[32:, 64:96]
    assert np.array_equal(heat_cell, pixels(result.extras["heatmap"]))
    assert len(result.extras["comparison"]) == 4 and result.extras["comparison_grid"].size == (4 * 32, 32)
    # the comparison's last image has no noise: it is the noise-free face
    assert np.array_equal(pixels(result.extras["comparison"][3]),
                          pixels(direct(G, demos.seeds_to_ws(G, [3]), noise_mode="none")[0]))


# Measured (8 samples, seeds 1-3): fine-layer noise puts 0.47-0.70 of the deviations' power above
# half Nyquist, coarse-layer noise 0.02-0.04; the ratio is 12-30.
@pytest.mark.parametrize("model", ["tiny", "sg2_32_uncond"])
def test_fine_noise_is_high_frequency(G, G_ref, model):
    G = G if model == "tiny" else G_ref
    assert demos.noise_layer_groups(G)["fine"][:2] == (3, 7)  # 16² and 32² layers
    fine = demos.noise_study(G, 1, num_samples=8, layers="fine")
    coarse = demos.noise_study(G, 1, num_samples=8, layers="coarse")
    hf_fine, hf_coarse = high_frequency_share(fine.images), high_frequency_share(coarse.images)
    assert hf_fine > 0.3 and hf_fine > 5 * hf_coarse, (hf_fine, hf_coarse)


def test_noise_strength_scales_the_deviation(G_ref):
    weak = demos.noise_study(G_ref, 3, num_samples=6, strength=0.5)
    strong = demos.noise_study(G_ref, 3, num_samples=6, strength=2.0)
    assert strong.extras["std"].mean() > 2 * weak.extras["std"].mean()


def test_noise_bad_input(G):
    for kwargs, message in [(dict(num_samples=1), "from 2 to"), (dict(num_samples=65), "from 2 to"),
                            (dict(strength=-1), "strength"), (dict(strength=float("nan")), "strength"),
                            (dict(layers="0-40"), "outside this model's layers 0-7"),
                            (dict(layers="loud"), "not a layer range"), (dict(noise_seed=2 ** 32), "Noise seed"),
                            (dict(psi=3), "psi"), (dict(class_idx=0), "unconditional")]:
        with pytest.raises(demos.DemoError, match=message):
            demos.noise_study(G, 1, **kwargs)
    with pytest.raises(demos.DemoError, match="at most 1"):
        demos.noise_study(G, "1-2")


def test_stylegan3_has_no_noise():
    G = stylegan.load(REFERENCE / "sg3t_32.pkl", device="cpu")
    with pytest.raises(demos.DemoError, match="has no noise inputs"):
        demos.noise_study(G, 1)


# -- video

def expected_frames(G, seeds, frames, space, easing, loop, psi=0.7):
    ws = torch.cat([ws for _, ws in demos.video_latents(G, seeds, frames, space, easing, loop, psi, None)])
    return np.stack([pixels(im.convert("RGB")) for im in direct(G, ws)])


def errors(frames, want):
    error = np.abs(frames.astype(np.float64) - want)
    return error.mean(), 10 * np.log10(255 ** 2 / (error ** 2).mean())


@pytest.mark.parametrize("space, loop", [("z", True), ("w", False)])
def test_video_frames(G, tmp_path, space, loop):
    seeds, per = [1, 2, 3], 4
    calls = []

    def progress(done, total):
        assert not torch.is_inference_mode_enabled() and torch.is_grad_enabled()  # the caller's state
        calls.append((done, total))
    path, recipe = demos.interpolation_video(G, seeds, tmp_path / "walk.mp4", frames_per_transition=per, fps=10,
                                             space=space, loop=loop, progress=progress)
    total = (3 if loop else 2) * per + (0 if loop else 1)
    assert iio.imread(path).shape == (total, 32, 32, 3) and recipe["frames"] == total
    assert calls[-1] == (total, total) and [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left
    # The first frame is the first keyframe; an open walk ends on the last keyframe.
    ws = demos.seeds_to_ws(G, seeds, 0.7)
    latents = [w for _, w in demos.video_latents(G, seeds, per, space, "smooth", loop, 0.7, None)]
    assert torch.allclose(latents[0][0], ws[0], atol=1e-5)
    assert torch.allclose(latents[per][0], ws[1], atol=1e-5)
    if not loop:
        assert torch.allclose(latents[-1][0], ws[-1], atol=1e-5)


# H.264 at quality 8, yuv420p, on the bundled faces (3 seeds, 4 frames per transition), measured:
# mean error 2.4 / 255, PSNR 37.9-38.2 dB (worst frame 36.9 dB); the codec loses more on sharper
# models (1.5 / 255 and 42.6 dB on the first bundled version, 2.1 and 39.3 on the eighth). Frames
# off by one in the sequence give a mean error of 9.6-11.3 / 255, so the bounds below still catch
# a misaligned walk.
MP4_MEAN_ERROR, MP4_PSNR = 3.5, 35.0
# GIF (256-colour palette): measured 0.9 / 255 and 45.7 dB.
GIF_MEAN_ERROR, GIF_PSNR = 2.5, 40.0


@pytest.mark.parametrize("space, loop", [("z", True), ("w", False)])
def test_video_frames_match_the_generator(G_faces, tmp_path, space, loop):
    seeds, per = [1, 2, 3], 4
    path, _ = demos.interpolation_video(G_faces, seeds, tmp_path / "walk.mp4", frames_per_transition=per,
                                        space=space, loop=loop)
    frames = iio.imread(path)
    want = expected_frames(G_faces, seeds, per, space, "smooth", loop)
    assert frames.shape == want.shape
    mean_error, psnr = errors(frames, want)
    assert mean_error < MP4_MEAN_ERROR and psnr > MP4_PSNR, (mean_error, psnr)
    shifted_error, _ = errors(frames[1:], want[:-1])
    assert shifted_error > MP4_MEAN_ERROR, shifted_error


def test_gif(G, G_faces, tmp_path):
    path, recipe = demos.interpolation_video(G, [1, 2], tmp_path / "walk.gif", frames_per_transition=3, fps=10)
    assert iio.imread(path).shape[0] == 6 and recipe["frames"] == 6
    with Image.open(path) as im:
        assert im.info["duration"] == 100 and im.info["loop"] == 0
    # Pillow merges identical consecutive frames (adding up their time), so compare with distinct frames.
    path, _ = demos.interpolation_video(G_faces, [1, 2, 3], tmp_path / "faces.gif", frames_per_transition=3,
                                        loop=False, space="z")
    frames = iio.imread(path)[..., :3]
    mean_error, psnr = errors(frames, expected_frames(G_faces, [1, 2, 3], 3, "z", "smooth", False))
    assert mean_error < GIF_MEAN_ERROR and psnr > GIF_PSNR, (mean_error, psnr)


def test_video_bad_input_leaves_nothing(G, tmp_path):
    (tmp_path / "file.txt").write_text("x")
    for kwargs, message in [(dict(seeds=[1]), "at least two"), (dict(seeds="1,-2"), "is not a seed"),
                            (dict(frames_per_transition=0), "at least 1"),
                            (dict(frames_per_transition=2.5), "whole number"),
                            (dict(frames_per_transition=1000), "at most 1800"), (dict(space="q"), "space"),
                            (dict(easing="bouncy"), "Easing"), (dict(fps=0), "Frames per second"),
                            (dict(psi=-3), "psi"), (dict(class_idx=2), "unconditional"),
                            (dict(out_path=tmp_path / "walk.avi"), ".mp4 or .gif"),
                            (dict(out_path=tmp_path / "missing" / "walk.mp4"), "does not exist"),
                            (dict(out_path=tmp_path / "file.txt" / "walk.mp4"), "is a file, not a folder")]:
        args = dict(seeds=[1, 2], out_path=tmp_path / "walk.mp4", frames_per_transition=2) | kwargs
        with pytest.raises(demos.DemoError, match=message):
            demos.interpolation_video(G, **args)
    assert [p.name for p in tmp_path.rglob("*")] == ["file.txt"]


def test_interrupted_video_leaves_nothing(G, tmp_path):
    def stop(done, total):
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        demos.interpolation_video(G, [1, 2, 3], tmp_path / "walk.mp4", frames_per_transition=8, progress=stop)
    assert list(tmp_path.iterdir()) == []
    assert not torch.is_inference_mode_enabled()


# -- recipes

OUTPUTS = [
    (lambda G: demos.generate(G, "1, 5, 9", psi=0.6, noise_mode="random", noise_seed=3), "grid"),
    (lambda G: demos.generate(G, "1, 5, 9", psi=0.6, truncation_cutoff=2), "image:1"),
    (lambda G: demos.style_mix(G, "1, 2", "3", layers="1-4"), "grid"),
    (lambda G: demos.style_mix(G, "1, 2", "3, 4", layers="middle", noise_mode="random", noise_seed=5), "image:3"),
    (lambda G: demos.noise_study(G, 4, num_samples=3, layers="fine"), "comparison_grid"),
    (lambda G: demos.noise_study(G, 4, num_samples=5, layers="1-5", strength=2), "heatmap"),
    (lambda G: demos.noise_study(G, 4, num_samples=3, noise_seed=7), "grid"),
]


@pytest.mark.parametrize("make, output", OUTPUTS)
def test_recipe_regenerates_the_identical_image(G, tmp_path, make, output):
    result = make(G)
    if output.startswith("image:"):
        image = result.images[int(output[6:])]
    else:
        image = result.grid if output == "grid" else result.extras[output]
    path = demos.save_png(image, tmp_path / "out.png", dict(result.recipe, output=output))
    recipe = demos.read_recipe(path)
    assert recipe["model_sha256"] == G.sha256 and recipe["output"] == output
    G.__dict__.pop("_ws_cache", None)  # rebuilt from scratch, not from the cache
    assert np.array_equal(pixels(demos.run_recipe(G, recipe)), pixels(Image.open(path)))


def test_recipe_limits_and_bad_outputs(G):
    recipe = demos.generate(G, "0-69", max_images=70).recipe
    with pytest.raises(demos.DemoError, match="at most 64"):
        demos.run_recipe(G, recipe)
    assert demos.run_recipe(G, recipe, "image:69", max_images=70).size == (32, 32)
    recipe = demos.generate(G, "1, 2").recipe
    for output in ("image:2", "image:x", "image:-1", "std", "nothing", 5):
        with pytest.raises(demos.DemoError, match="does not make"):
            demos.run_recipe(G, recipe, output)
    damaged = [(dict(recipe, batch_size=0), "Batch size"), (dict(recipe, seeds="x"), "is not a seed"),
               (dict(recipe, translate=5), "Translate"), (dict(recipe, psi=None), "psi"),
               (dict(recipe, kind="video"), "cannot be rebuilt"), ({"kind": "generate"}, "missing or wrong")]
    for bad, message in damaged:
        with pytest.raises(demos.DemoError, match=message):
            demos.run_recipe(G, bad)


def test_damaged_recipes(tmp_path):
    Image.new("RGB", (4, 4)).save(tmp_path / "plain.png")
    with pytest.raises(demos.DemoError, match="no stylegan recipe"):
        demos.read_recipe(tmp_path / "plain.png")
    (tmp_path / "junk.png").write_bytes(b"not a png")
    with pytest.raises(demos.DemoError, match="not a readable PNG"):
        demos.read_recipe(tmp_path / "junk.png")
    with pytest.raises(demos.DemoError, match="not a readable PNG"):
        demos.read_recipe(tmp_path / "missing.png")
    from PIL import PngImagePlugin
    for text in ("{broken", "[1, 2]", '{"kind": ["generate"]}', '{"kind": "video"}'):
        info = PngImagePlugin.PngInfo()
        info.add_text(demos.RECIPE_KEY, text)
        Image.new("RGB", (4, 4)).save(tmp_path / "broken.png", pnginfo=info)
        with pytest.raises(demos.DemoError, match="damaged"):
            demos.read_recipe(tmp_path / "broken.png")


def test_save_png_errors_leave_nothing(G, tmp_path):
    image = Image.new("RGB", (4, 4))
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(demos.DemoError, match="does not exist"):
        demos.save_png(image, tmp_path / "missing" / "a.png", {})
    with pytest.raises(demos.DemoError, match="is a file, not a folder"):
        demos.save_png(image, tmp_path / "file.txt" / "a.png", {})
    assert [p.name for p in tmp_path.rglob("*")] == ["file.txt"]


def test_a_face_does_not_depend_on_the_other_seeds(G):
    """Batched matrix products round differently; with the cache, a face would depend on history."""
    G.__dict__.pop("_ws_cache", None)
    together = demos.seeds_to_ws(G, list(range(40)))
    for seed in range(8):
        G.__dict__.pop("_ws_cache", None)
        assert torch.equal(demos.seeds_to_ws(G, [seed])[0], together[seed])


def test_recipes_of_the_old_layout_rebuild_the_same_image(G):
    """Recipes written before the settings objects had translate as one [x, y] field."""
    result = demos.generate(G, "1, 5", psi=0.6, batch_size=4)
    old = {k: v for k, v in result.recipe.items() if k not in ("translate_x", "translate_y")}
    old.update(translate=[0.0, 0.0], output="grid")
    assert np.array_equal(pixels(demos.run_recipe(G, old)), pixels(result.grid))
