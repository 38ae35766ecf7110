"""Steering a face: SeFa and GANSpace directions, the Edit task, W files in NVIDIA's layout, the
Inside view, through the library and the command line."""

import json
import re
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import FIXTURES, REFERENCE, run_main
from stylegan import demos, directions, loading, outputs
from stylegan.settings import EditSettings, GenerateSettings, SettingsError

pytestmark = pytest.mark.usefixtures("one_thread")

FAMILIES = {"sg2": REFERENCE / "sg2_32_uncond.pkl", "sg3t": REFERENCE / "sg3t_32.pkl",
            "sg3r": REFERENCE / "sg3r_32.pkl", "sg1": FIXTURES / "stylegan1" / "sg1_32.pkl",
            "sg2tf": FIXTURES / "stylegan2_tf" / "sg2tf_32_skip.pkl", "bundled": None}


@pytest.fixture(scope="module")
def bundled():
    return loading.load(None, device="cpu")


def load(name):
    return loading.load(None if FAMILIES[name] is None else str(FAMILIES[name]), device="cpu")


def pixels(image_or_path):
    if isinstance(image_or_path, Image.Image):
        return np.asarray(image_or_path).astype(np.int64)
    with Image.open(image_or_path) as im:
        return np.asarray(im).astype(np.int64)


def files(folder):
    return sorted(p.name for p in folder.iterdir())


# -- directions

def style_weights_by_name(G):
    """The style affines' weights of the modulated / AdaIN convolutions, found by parameter name
    (not through the model's own style_affines): every `affine.weight` but the toRGBs' and
    StyleGAN3's input's."""
    names = [n for n in G.state_dict() if n.endswith("affine.weight")
             and "torgb" not in n and not n.startswith("synthesis.input.")]
    last = [n for n in names if re.search(r"\.L\d+_", n)]
    if last:  # StyleGAN3: the highest-numbered layer is its toRGB
        top = max(int(re.search(r"\.L(\d+)_", n).group(1)) for n in last)
        names = [n for n in names if f".L{top}_" not in n]
    return [G.state_dict()[n].double().numpy() for n in names]


@pytest.mark.parametrize("name", list(FAMILIES))
def test_sefa_is_the_closed_form_factorisation(name):
    G = load(name)
    A = np.concatenate(style_weights_by_name(G))
    A /= np.linalg.norm(A, axis=1, keepdims=True)
    _, singular, vt = np.linalg.svd(A, full_matrices=False)  # AᵀA's eigenvectors, another way
    found = directions.sefa(G, (0, G.num_ws))
    assert found.vectors.shape == (G.w_dim, G.w_dim) and found.vectors.dtype == np.float32
    for k in range(5):
        assert abs(float(found.vectors[k] @ vt[k])) >= 0.99, k
    np.testing.assert_allclose(found.values[:5], singular[:5] ** 2, rtol=1e-4)


def test_sefa_of_a_layer_range_uses_only_those_layers(bundled):
    coarse = directions.sefa(bundled, (0, 3))
    affines = [layer.affine.weight.double().numpy() for layer in bundled.synthesis.noise_layers[:3]]
    A = np.concatenate(affines)
    A /= np.linalg.norm(A, axis=1, keepdims=True)
    top = np.linalg.svd(A)[2][0]
    assert abs(float(coarse.vectors[0] @ top)) >= 0.99
    assert abs(float(coarse.vectors[0] @ directions.sefa(bundled, (0, bundled.num_ws)).vectors[0])) < 0.99
    with pytest.raises(SettingsError, match="drive no style convolutions"):
        directions.sefa(bundled, (bundled.num_ws - 1, bundled.num_ws))  # the last w drives only the toRGB


@pytest.mark.parametrize("name", ["bundled", "sg3t", "sg1"])
def test_ganspace_components_are_orthonormal_and_ordered_by_variance(name):
    G = load(name)
    found = directions.ganspace(G, samples=2000)
    v = found.vectors.astype(np.float64)
    np.testing.assert_allclose(v @ v.T, np.eye(G.w_dim), atol=1e-5)
    assert (np.diff(found.values) <= 1e-6).all() and found.values[0] > found.values[-1]
    w = directions.w_samples(G, 2000)
    np.testing.assert_allclose((w @ v[:3].T).var(axis=0, ddof=1), found.values[:3], rtol=1e-4)
    assert 0 < found.explained()[0] < 1 and abs(found.explained().sum() - 1) < 1e-5


# -- the edit task

def test_strength_zero_gives_the_start_face(bundled):
    strip = demos.edit(bundled, seed=5, strength=0, steps=5)
    same_batch = demos.generate(bundled, "5, 5, 5, 5, 5")
    for image, face in zip(strip.images, same_batch.images):
        assert np.array_equal(pixels(image), pixels(face))
    alone = demos.generate(bundled, "5").images[0]  # one image takes another convolution path: last bits differ
    assert np.abs(pixels(strip.images[0]) - pixels(alone)).max() <= 1
    one_at_a_time = demos.edit(bundled, seed=5, strength=0, steps=3, batch_size=1)
    assert all(np.array_equal(pixels(image), pixels(alone)) for image in one_at_a_time.images)


def test_the_strip_moves_the_chosen_layers_by_the_chosen_steps(bundled):
    result = demos.edit(bundled, seed=2, method="ganspace", components="1", layers="coarse", strength=2, steps=5)
    start, stop = result.extras["layers"]
    assert (start, stop) == (0, 3)
    w0 = demos.seeds_to_ws(bundled, [2], 0.7)[0]
    moved = result.ws - w0
    assert torch.count_nonzero(moved[:, stop:]) == 0
    direction = torch.from_numpy(directions.ganspace(bundled).vectors[1])
    sigma = float(directions.ganspace(bundled).values[1]) ** 0.5
    for offset, delta in zip(result.extras["offsets"], moved[:, start]):
        assert torch.allclose(delta, offset * sigma * direction, rtol=1e-4, atol=1e-5)
    assert result.extras["offsets"] == [-2, -1, 0, 1, 2]
    ends = pixels(result.images[0]) - pixels(result.images[-1])
    assert np.abs(ends).mean() > 5  # the faces at the ends differ visibly
    assert result.grid.size == (5 * 64, 64)


def test_directions_combine_with_their_weights(bundled):
    one = demos.edit(bundled, seed=3, method="sefa", components="0", strength=1, steps=3)
    two = demos.edit(bundled, seed=3, method="sefa", components="0, 2*-0.5", strength=1, steps=3)
    found = directions.sefa(bundled, (0, bundled.num_ws))
    w0 = demos.seeds_to_ws(bundled, [3], 0.7)[0]
    spread = [directions.spread(bundled, found.vectors[k].astype(np.float64)) for k in (0, 2)]
    want = spread[0] * found.vectors[0] - 0.5 * spread[1] * found.vectors[2]
    assert torch.allclose(two.ws[2, 0] - w0[0], torch.from_numpy(want).float(), atol=1e-4)
    assert not torch.equal(one.ws, two.ws)


def test_a_recipe_rebuilds_the_strip(bundled, tmp_path):
    result = demos.edit(bundled, seed=4, method="ganspace", components="0, 1*0.5", layers="2-6", strength=4)
    outputs.save_png(result.grid, tmp_path / "edit.png", dict(result.recipe, output="grid"))
    recipe = outputs.read_recipe(tmp_path / "edit.png")
    assert recipe["components"] == [[0, 1.0], [1, 0.5]] and recipe["layers"] == [2, 6]
    assert np.array_equal(pixels(demos.run_recipe(bundled, recipe)), pixels(tmp_path / "edit.png"))


def test_edit_link_round_trip():
    task = EditSettings(seed=9, method="ganspace", components="0, 3*-0.5", layers="middle", strength=2.5)
    query = dict(re.findall(r"([^&=]+)=([^&]*)", task.to_query("bundled")))
    import urllib.parse
    query = {k: urllib.parse.unquote_plus(v) for k, v in query.items()}
    assert query["tab"] == "edit" and query["dirs"] == "0, 3*-0.5"
    assert EditSettings(**EditSettings.values_from_query(query)) == task


# -- W files

def nvidia_style_render(G, path):
    """How NVIDIA's generate.py renders --projected-w: np.load(...)['w'], a shape assertion, then each w
    alone through G.synthesis with constant noise, converted to uint8 as its scripts do."""
    ws = torch.tensor(np.load(path)["w"])
    assert ws.shape[1:] == (G.num_ws, G.w_dim)
    images = []
    for w in ws:
        img = G.synthesis(w.unsqueeze(0), noise_mode="const")
        images.append((img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)[0].numpy())
    return images


def test_a_saved_w_file_is_in_nvidias_layout_and_renders_the_faces_shown(capsys, tmp_path):
    status, out, err = run_main(capsys, "generate", "--seeds", "3, 8", "--out", tmp_path / "faces",
                                "--save-w", tmp_path / "w.npz")
    assert status == 0, err
    with zipfile.ZipFile(tmp_path / "w.npz") as z:
        assert z.namelist() == ["w.npy"]
    data = np.load(tmp_path / "w.npz")
    G = loading.load(None, device="cpu")
    assert data["w"].dtype == np.float32 and data["w"].shape == (2, G.num_ws, G.w_dim)
    with torch.inference_mode():
        rendered = nvidia_style_render(G, tmp_path / "w.npz")
    for image, seed in zip(rendered, (3, 8)):
        assert np.array_equal(image.astype(np.int64), pixels(tmp_path / "faces" / f"seed{seed:04d}.png"))
    # ...and our own generate --w renders it again
    status, _, err = run_main(capsys, "generate", "--w", tmp_path / "w.npz", "--out", tmp_path / "again")
    assert status == 0, err
    assert files(tmp_path / "again") == ["grid.png", "w0000.png", "w0001.png"]
    assert np.array_equal(pixels(tmp_path / "again" / "w0001.png"), pixels(tmp_path / "faces" / "seed0008.png"))
    recipe = outputs.read_recipe(tmp_path / "again" / "w0000.png")
    assert recipe["w_file"] == "sha256:" + __import__("hashlib").sha256((tmp_path / "w.npz").read_bytes()).hexdigest()


@pytest.mark.parametrize("name", ["sg2_32_uncond", "sg3t_32", "sg2_16_gray"])
def test_a_w_file_of_the_reference_ws_renders_the_reference_images(name, tmp_path):
    ref = np.load(REFERENCE / f"{name}.npz")
    np.savez(tmp_path / "projected_w.npz", w=ref["ws_psi07"].astype(np.float32))
    G = loading.load(str(REFERENCE / f"{name}.pkl"), device="cpu")
    task = GenerateSettings(w_file=str(tmp_path / "projected_w.npz"))
    result = demos.generate(G, task)
    assert torch.equal(result.ws, torch.from_numpy(ref["ws_psi07"].astype(np.float32)))
    with torch.inference_mode():
        images = demos.synthesize(G, result.ws, len(result.ws), noise_mode="const").numpy()
    want = ref["img_const_psi07"]
    assert np.abs(images - want).max() <= 1e-4 * max(1, np.abs(want).max())
    want_pixels = [pixels(im) for im in demos.to_pil(torch.from_numpy(want))]
    assert all(np.abs(pixels(im) - w).max() <= 1 for im, w in zip(result.images, want_pixels))


def test_edit_and_mix_start_from_a_w_file(bundled, tmp_path):
    faces = demos.generate(bundled, "11, 12")
    outputs.save_w(tmp_path / "mine.npz", faces.ws)
    strip = demos.edit(bundled, w_file=str(tmp_path / "mine.npz"), w_index=1, strength=0, steps=3)
    assert all(torch.equal(w, faces.ws[1]) for w in strip.ws)
    grid = demos.style_mix(bundled, col_seeds="4, 5", layers="coarse", w_file=str(tmp_path / "mine.npz"))
    assert torch.equal(grid.ws[0, 3:], faces.ws[0, 3:]) and torch.equal(grid.ws[3, 3:], faces.ws[1, 3:])
    assert grid.grid.size == (3 * 64, 3 * 64)


# -- bad input: one sentence each, nothing written

def make_bad_files(folder, w_dim, num_ws):
    np.savez(folder / "shape.npz", w=np.zeros([2, num_ws + 1, w_dim], np.float32))
    np.savez(folder / "flat.npz", w=np.zeros([num_ws, w_dim], np.float32))
    bad = np.zeros([1, num_ws, w_dim], np.float32)
    bad[0, 2, 5] = np.nan
    np.savez(folder / "nan.npz", w=bad)
    np.savez(folder / "nokey.npz", ws=np.zeros([1, num_ws, w_dim], np.float32))
    np.savez(folder / "objects.npz", w=np.array([{"a": 1}], dtype=object))
    (folder / "text.npz").write_text("not numpy")
    np.save(folder / "narrow.npy", np.ones(w_dim // 2, np.float32))
    np.savez(folder / "zero.npz", directions=np.zeros([2, w_dim], np.float32))
    with zipfile.ZipFile(folder / "bomb.npz", "w", zipfile.ZIP_DEFLATED) as z:
        header = "{'descr': '<f4', 'fortran_order': False, 'shape': (4096, 4096, 64), }"
        z.writestr("w.npy", b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode()
                   + bytes(200 * 2 ** 20))
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000), }".ljust(117) + "\n"
    (folder / "bomb.npy").write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode())


BAD = [
    (["generate", "--w", "shape.npz"], "holds ws of shape [2, 11, 128], but this model takes [N, 10, 128]"),
    (["generate", "--w", "flat.npz"], "has shape [10, 128]"),
    (["generate", "--w", "nan.npz"], "contains NaN"),
    (["generate", "--w", "nokey.npz"], "has no array 'w'"),
    (["generate", "--w", "objects.npz"], "cannot be read as a W file"),
    (["generate", "--w", "text.npz"], "is not a W file"),
    (["generate", "--w", "missing.npz"], "does not exist"),
    (["generate", "--w", "bomb.npz"], "declares more than 64 MB"),
    (["edit", "--method", "file", "--directions", "narrow.npy"], "are 64 wide, but this model's W is 128 wide"),
    (["edit", "--method", "file", "--directions", "bomb.npy"], "declares more than 64 MB"),
    (["edit", "--method", "file", "--directions", "zero.npz"], "all zeros"),
    (["edit", "--method", "file"], "needs a directions file"),
    (["edit", "--strength", "1e6"], "must be from 0 to 20 standard deviations"),
    (["edit", "--strength", "nan"], "must be from 0 to 20"),
    (["edit", "--components", "0, x"], "is not a direction"),
    (["edit", "--components", "200"], "Direction 200 does not exist: there are 128"),
    (["edit", "--layers", "9-3"], "is outside this model's layers"),
    (["edit", "--layers", "9-10"], "drive no style convolutions"),
    (["edit", "--w", "shape.npz"], "this model takes [N, 10, 128]"),
    (["layers", "--layer", "30"], "Layer 30 does not exist: this model has feature layers 0 to 8"),
    (["generate", "--save-w", "w.txt"], "W files are .npz files"),
]


@pytest.mark.parametrize("args, message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_gets_one_sentence_and_writes_nothing(capsys, tmp_path, args, message):
    make_bad_files(tmp_path, 128, 10)
    before = files(tmp_path)
    args = [str(tmp_path / a) if a.endswith((".npz", ".npy", ".txt")) else a for a in args]
    status, out, err = run_main(capsys, *args, "--out", tmp_path / "out.png")
    assert status == 2 and out == "", out
    assert err.startswith("error: ") and message in err, err
    assert len(err.strip().splitlines()) == 1
    assert files(tmp_path) == before


# -- the command line's directions and look inside

def test_directions_file_from_the_cli_gives_the_same_edit(capsys, tmp_path, bundled):
    status, out, err = run_main(capsys, "directions", "--method", "sefa", "--layers", "coarse",
                                "--out", tmp_path / "dirs.npz")
    assert status == 0, err
    data = np.load(tmp_path / "dirs.npz")
    assert sorted(data) == ["directions", "values"] and data["directions"].shape == (128, 128)
    assert data["directions"].dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(data["directions"], axis=1), 1, atol=1e-5)
    np.save(tmp_path / "one.npy", data["directions"][3:4] * 7)  # one direction, any length, as boundaries come
    from_file = demos.edit(bundled, seed=1, method="file", directions_file=str(tmp_path / "one.npy"),
                           layers="coarse", strength=2)
    computed = demos.edit(bundled, seed=1, method="sefa", components="3", layers="coarse", strength=2)
    assert torch.allclose(from_file.ws, computed.ws, atol=1e-5)


def test_layers_command_writes_the_three_pictures(capsys, tmp_path):
    status, out, err = run_main(capsys, "layers", "--seed", "2", "--layer", "5", "--channels", "8",
                                "--out", tmp_path / "look.png")
    assert status == 0, err
    assert "->  5 b32.conv0" in out and "the 8 strongest of 64 channels" in out
    assert files(tmp_path) == ["look-rgb.png", "look-torgb.png", "look.png"]
    recipe = outputs.read_recipe(tmp_path / "look.png")
    assert recipe["kind"] == "layers" and recipe["layer"] == 5
    G = loading.load(None, device="cpu")
    assert np.array_equal(pixels(demos.run_recipe(G, recipe)), pixels(tmp_path / "look.png"))
    with Image.open(tmp_path / "look-torgb.png") as im:
        assert im.size == (5 * 128, 128)  # 4, 8, 16, 32 and 64 px, each enlarged to 128


def test_generate_link_carries_cutoff_and_noise_seed():
    task = GenerateSettings(seeds="1-3", truncation_cutoff=4, noise_mode="random", noise_seed=77)
    import urllib.parse
    query = dict(urllib.parse.parse_qsl(task.to_query()))
    assert query["truncation_cutoff"] == "4" and query["noise_seed"] == "77"
    assert GenerateSettings(**GenerateSettings.values_from_query(query)) == task
    assert json.loads(json.dumps(task.to_recipe()))["truncation_cutoff"] == 4


def test_noise_and_video_start_from_a_w_file(bundled, tmp_path):
    faces = demos.generate(bundled, "21, 22")
    outputs.save_w(tmp_path / "mine.npz", faces.ws)
    study = demos.noise_study(bundled, w_file=str(tmp_path / "mine.npz"), num_samples=2)
    assert torch.equal(study.ws[0], faces.ws[0])
    path, recipe = demos.interpolation_video(bundled, seeds="5", w_file=str(tmp_path / "mine.npz"), loop=False,
                                             frames_per_transition=2, out_path=tmp_path / "walk.mp4")
    import imageio.v3 as iio
    frames = iio.imread(path, extension=".mp4")
    assert frames.shape[0] == recipe["frames"] == 5  # face 21, face 22, seed 5: two transitions and the end
    assert np.abs(frames[0].astype(int) - pixels(faces.images[0])).mean() < 3  # H.264: nearly the face
    with pytest.raises(SettingsError, match="walk in W"):
        demos.interpolation_video(bundled, seeds="5", w_file=str(tmp_path / "mine.npz"), space="z",
                                  out_path=tmp_path / "z.mp4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.npz", "walk.mp4"]


def test_edit_video_sweeps_out_and_back(capsys, tmp_path):
    status, out, err = run_main(capsys, "edit", "--seed", "3", "--method", "ganspace", "--strength", "2", "--video",
                                "--out", tmp_path / "edit.png")
    assert status == 0, err
    import imageio.v3 as iio
    frames = iio.imread(tmp_path / "edit-sweep.mp4", extension=".mp4").astype(int)
    assert frames.shape == (48, 64, 64, 3)
    strip = pixels(tmp_path / "edit.png")
    start_face, plus = strip[:, 3 * 64:4 * 64], strip[:, 6 * 64:]
    assert np.abs(frames[0] - start_face).mean() < 3  # starts at the start face (H.264 is lossy)
    assert np.abs(frames[12] - plus).mean() < 3  # a quarter in: +strength, the strip's last face
    assert np.abs(frames[12] - frames[36]).mean() > 5
