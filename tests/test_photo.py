"""Your own photo: opened safely and upright, aligned, projected into W / W+, and the result used as a
start face; bad photos get one sentence; the photo never appears in a recipe, a link or a log line."""

import io
import json
import logging
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import ROOT, run_main
from stylegan import demos, loading, outputs, photos
from stylegan.settings import ProjectSettings, SettingsError

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def bundled():
    return loading.load(None, device="cpu")


@pytest.fixture(scope="module")
def face_png(bundled, tmp_path_factory):
    """A face the bundled model can make, saved as a photo named like a person."""
    path = tmp_path_factory.mktemp("photos") / "jane-doe-portrait.png"
    demos.generate(bundled, "17").images[0].save(path)
    return path


def pixels(path_or_image):
    image = path_or_image if isinstance(path_or_image, Image.Image) else Image.open(path_or_image)
    return np.asarray(image).astype(np.int64)


def project(G, photo, **fields):
    steps = demos.project_steps(G, ProjectSettings(**fields), photo)
    seen = []
    while True:
        try:
            seen.append(next(steps))
        except StopIteration as finished:
            return finished.value, seen


# -- projection

def test_self_projection_in_w_plus_reconstructs_and_its_w_renders_the_result(capsys, bundled, face_png, tmp_path):
    status, out, err = run_main(capsys, "project", face_png, "--aligned", "--space", "w+", "--steps", "150",
                                "--quiet", "--out", tmp_path / "me")
    assert status == 0, err
    assert sorted(p.name for p in (tmp_path / "me").iterdir()) == ["aligned.png", "compare.png", "projected_w.npz",
                                                                     "reconstruction.png"]
    fit = photos_psnr(tmp_path / "me" / "reconstruction.png", face_png)
    assert fit >= 27, fit
    assert f"PSNR {fit:.1f} dB" in out and "MS-SSIM" in out

    w = np.load(tmp_path / "me" / "projected_w.npz")["w"]
    assert w.shape == (1, bundled.num_ws, bundled.w_dim) and w.dtype == np.float32
    assert not np.allclose(w[0, 0], w[0, -1])  # W+: a w per layer
    status, _, err = run_main(capsys, "generate", "--w", tmp_path / "me" / "projected_w.npz", "--out",
                              tmp_path / "again.png")
    assert status == 0, err
    assert np.array_equal(pixels(tmp_path / "again.png"), pixels(tmp_path / "me" / "reconstruction.png"))

    recipe = outputs.read_recipe(tmp_path / "me" / "reconstruction.png")
    import hashlib
    assert recipe["w_file"] == "sha256:" + hashlib.sha256((tmp_path / "me" / "projected_w.npz").read_bytes()).hexdigest()
    assert recipe["projected"]["space"] == "w+" and "jane" not in json.dumps(recipe)


def photos_psnr(a, b):
    from stylegan import projection
    return projection.psnr(pixels(a), pixels(b))


def test_projection_in_w_uses_one_w_and_reports_progress(bundled, face_png):
    result, seen = project(bundled, face_png, aligned=True, space="w", steps=50)
    assert seen[0].step == 0 and seen[0].aligned is not None
    assert [p.step for p in seen[1:]] == list(range(1, 51))
    assert seen[25].preview is not None and seen[-1].preview is not None
    assert torch.equal(result.ws[0, 0], result.ws[0, -1])
    assert result.psnr > 20 and result.comparison.size == (128, 64)
    assert result.losses == ["pixel (MSE)", "MS-SSIM"]


def test_a_projected_face_is_a_start_face_in_the_other_tabs(bundled, face_png, tmp_path):
    result, _ = project(bundled, face_png, aligned=True, steps=30)
    (tmp_path / "projected_w.npz").write_bytes(result.w_file)
    w_file = str(tmp_path / "projected_w.npz")
    mix = demos.style_mix(bundled, col_seeds="1, 2", layers="coarse", w_file=w_file)
    assert torch.equal(mix.ws[0, 3:], result.ws[0, 3:])
    strip = demos.edit(bundled, w_file=w_file, strength=0, steps=3, batch_size=1)
    assert np.array_equal(pixels(strip.images[1]), pixels(result.reconstruction))
    demos.interpolation_video(bundled, seeds="3", w_file=w_file, frames_per_transition=2,
                              out_path=tmp_path / "walk.mp4")
    assert (tmp_path / "walk.mp4").stat().st_size > 0


# -- photos of every kind

def rgb_face(face_png):
    return Image.open(face_png).convert("RGB")


@pytest.mark.parametrize("kind", ["cmyk", "16-bit", "palette", "grey", "transparent", "large"])
def test_unusual_photos_are_read_as_rgb(face_png, tmp_path, kind):
    face = rgb_face(face_png)
    path = tmp_path / ("photo.jpg" if kind == "cmyk" else "photo.png")
    if kind == "cmyk":
        face.convert("CMYK").save(path, quality=95)
    elif kind == "16-bit":
        Image.fromarray((np.asarray(face.convert("L"), dtype=np.uint16) * 257)).save(path)
    elif kind == "palette":
        face.convert("P", palette=Image.ADAPTIVE).save(path)
    elif kind == "grey":
        face.convert("L").save(path)
    elif kind == "transparent":
        rgba = face.convert("RGBA")
        alpha = Image.new("L", face.size, 0)
        alpha.paste(255, (0, 0, 32, 64))
        rgba.putalpha(alpha)
        rgba.save(path)
    else:
        face.resize((1000, 1000), Image.LANCZOS).save(path)
    opened = photos.open_photo(path)
    assert opened.mode == "RGB"
    got = pixels(opened.resize(face.size, Image.LANCZOS) if opened.size != face.size else opened)
    want = pixels(face.convert("L").convert("RGB") if kind in ("16-bit", "grey") else face)
    if kind == "transparent":
        assert (got[:, 32:] == 255).all()  # the transparent half is white
        got, want = got[:, :32], want[:, :32]
    assert np.abs(got - want).mean() < 6, kind


def test_an_exif_rotated_photo_is_turned_upright(tmp_path):
    upright = Image.new("RGB", (40, 60), "blue")
    upright.paste((255, 0, 0), (0, 0, 40, 20))  # red on top
    stored = upright.transpose(Image.ROTATE_90)  # as a camera held sideways stores it
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the viewer must turn it 90 degrees clockwise
    stored.save(tmp_path / "turned.jpg", exif=exif, quality=95)
    opened = photos.open_photo(tmp_path / "turned.jpg")
    assert opened.size == (40, 60)
    top = pixels(opened)[:15].mean(axis=(0, 1))
    assert top[0] > 200 and top[2] < 60  # red is on top again


def png_declaring(width, height):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def bad_photos(folder, face_png):
    (folder / "bomb.png").write_bytes(png_declaring(100_000, 100_000))  # past Pillow's own limit
    (folder / "big.png").write_bytes(png_declaring(8000, 8000))  # past ours, not Pillow's
    data = io.BytesIO()
    rgb_face(face_png).resize((256, 256)).save(data, "JPEG", quality=95)
    (folder / "cut.jpg").write_bytes(data.getvalue()[:len(data.getvalue()) // 2])
    (folder / "notes.png").write_text("these are my notes, not a photo")


BAD = [("bomb.png", "declares far more than 50 megapixels"), ("big.png", "declares 8000 x 8000 pixels"), ("cut.jpg", "cut short or damaged"),
       ("notes.png", "not an image that can be read"), ("missing.jpg", "does not exist")]


@pytest.mark.parametrize("name, message", BAD, ids=[n for n, _ in BAD])
def test_bad_photos_get_one_sentence_in_the_cli(capsys, face_png, tmp_path, name, message):
    bad_photos(tmp_path, face_png)
    before = sorted(p.name for p in tmp_path.iterdir())
    status, out, err = run_main(capsys, "project", tmp_path / name, "--aligned", "--out", tmp_path / "out")
    assert status == 2 and err.startswith("error: ") and message in err, err
    assert len(err.strip().splitlines()) == 1 and name not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_bad_photos_get_one_sentence_in_the_app_and_the_log_never_names_the_photo(face_png, tmp_path, caplog):
    import gradio as gr
    import app
    bad_photos(tmp_path, face_png)
    studio = app.build_app(None, "cpu").studio
    for name, message in BAD:
        named = tmp_path / f"jane-doe-{name}"
        if (tmp_path / name).exists():
            (tmp_path / name).rename(named)
        with caplog.at_level(logging.INFO), pytest.raises(gr.Error) as e:
            list(studio.project("Offline faces 64 px (bundled)", str(named), aligned=True))
        assert message in str(e.value) and "jane" not in str(e.value)
    assert "jane" not in caplog.text and "refused" in caplog.text
    with pytest.raises(gr.Error, match="Upload a photo first"):
        list(studio.project("Offline faces 64 px (bundled)", None))


def test_a_small_photo_is_projected_with_a_warning(capsys, face_png, tmp_path):
    rgb_face(face_png).resize((40, 40), Image.LANCZOS).save(tmp_path / "small.png")
    status, out, err = run_main(capsys, "project", tmp_path / "small.png", "--aligned", "--steps", "5", "--quiet",
                                "--out", tmp_path / "out")
    assert status == 0, err
    assert "smaller than the model's 64 px: the result will be blurry" in out


def test_the_app_shows_the_crop_progress_and_result(face_png):
    import app
    studio = app.build_app(None, "cpu").studio
    updates = list(studio.project("Offline faces 64 px (bundled)", str(face_png), aligned=True, steps=50))
    aligned, *_ = updates[0]
    assert np.array_equal(pixels(aligned), pixels(face_png))
    previews = [u for u in updates[1:-1] if "Step" in str(u[4])]
    assert [p[4].split(",")[0] for p in previews] == ["Step 25 of 50", "Step 50 of 50"]
    assert np.array_equal(pixels(previews[-1][1]), pixels(updates[-1][1]))  # the last preview is the result
    _, reconstruction, compare, w_file, caption, recipe = updates[-1]
    assert Image.open(compare).size == (128, 64) and "PSNR" in caption
    assert np.load(w_file)["w"].shape == (1, 10, 128)
    assert "jane" not in json.dumps(recipe) and str(face_png.parent) not in json.dumps(recipe)


def test_settings_check_their_values():
    with pytest.raises(SettingsError, match="Space 'z' is not w or w\\+"):
        ProjectSettings(space="z")
    with pytest.raises(SettingsError, match="The number of steps 6000"):
        ProjectSettings(steps=6000)


def test_the_default_steps_follow_the_resolution(bundled):
    from conftest import tiny_generator
    assert ProjectSettings().resolve(bundled).steps == 300
    assert ProjectSettings().resolve(tiny_generator(256)).steps == 150
    assert ProjectSettings().resolve(tiny_generator(512)).steps == 100
    assert ProjectSettings(steps=40).resolve(tiny_generator(512)).steps == 40


# -- alignment of a real photo (tests/photos: NASA's portrait of Eileen Collins, public domain)

ASTRONAUT = ROOT / "tests" / "photos" / "astronaut.png"


def aligned_landmarks(image, landmarks, size):
    """Where FFHQ's alignment puts the given landmarks in its size x size crop: the quad's corners go to
    the crop's corners, so a point's place follows from its coordinates along the quad's two sides."""
    quad, side = photos.ffhq_quad(landmarks)
    origin, across, down = quad[0], (quad[3] - quad[0]) / side, (quad[1] - quad[0]) / side
    rel = np.asarray(landmarks) - origin
    return np.stack([rel @ across, rel @ down], axis=1) * size / side


def test_eyes_land_where_ffhq_alignment_puts_them():
    from stylegan import faces
    photo = photos.open_photo(ASTRONAUT)
    found, = faces.detect_faces(photo)
    want = aligned_landmarks(photo, found.landmarks, 256)
    # FFHQ's framing: eyes a quarter of the width apart, centred, a little above the middle.
    assert np.allclose(want[0], [96, want[0][1]], atol=1) and np.allclose(want[1], [160, want[0][1]], atol=1)
    assert 100 < want[0][1] < 128
    crop = photos.align_ffhq(photo, found.landmarks, 256)
    again, = faces.detect_faces(crop)
    assert np.abs(again.landmarks[:2] - want[:2]).max() < 3, (again.landmarks, want)
    assert abs(again.landmarks[0][1] - again.landmarks[1][1]) < 2  # level


def test_a_rotated_copy_aligns_to_the_same_crop():
    from stylegan import faces
    photo = photos.open_photo(ASTRONAUT)
    turned = photo.rotate(25, resample=Image.BICUBIC, expand=True, fillcolor=(128, 128, 128))
    crops = [photos.align_ffhq(p, faces.detect_faces(p)[0].landmarks, 256) for p in (photo, turned)]
    a, b = (pixels(c)[48:208, 48:208] for c in crops)  # the face; the borders hold the padding
    assert np.abs(a - b).mean() < 12


def test_the_cli_finds_the_face_and_a_photo_without_one_exits_2(capsys, tmp_path):
    status, out, err = run_main(capsys, "project", ASTRONAUT, "--steps", "3", "--quiet", "--out", tmp_path / "me")
    assert status == 0, err
    with Image.open(tmp_path / "me" / "aligned.png") as im:
        assert im.size == (64, 64)
    Image.new("RGB", (200, 200), (90, 120, 150)).save(tmp_path / "wall.png")
    status, out, err = run_main(capsys, "project", tmp_path / "wall.png", "--out", tmp_path / "none")
    assert status == 2 and "No face was found in the photo" in err and "--aligned" in err
    assert not (tmp_path / "none").exists()


def test_a_cancelled_projection_leaves_nothing_of_the_photo(face_png):
    import app
    studio = app.build_app(None, "cpu").studio
    updates = studio.project("Offline faces 64 px (bundled)", str(face_png), aligned=True, steps=200)
    aligned = next(updates)[0]
    next(updates)  # the first preview
    assert Path(aligned).exists()
    updates.close()  # what Gradio does when the visitor leaves or presses stop
    assert not Path(aligned).parent.exists()
    assert list(studio.output_dir.rglob("*.png")) == []


def test_the_largest_of_several_faces_is_taken_and_said(capsys, tmp_path):
    face = Image.open(ASTRONAUT).convert("RGB")
    group = Image.new("RGB", (512, 256), (200, 200, 200))
    group.paste(face, (0, 0))
    group.paste(face.resize((160, 160), Image.LANCZOS), (300, 48))
    group.save(tmp_path / "two.png")
    status, out, err = run_main(capsys, "project", tmp_path / "two.png", "--steps", "2", "--quiet",
                                "--out", tmp_path / "out")
    assert status == 0, err
    assert "2 faces were found; the largest is used." in out
    from stylegan import faces
    alone = photos.align_ffhq(face, faces.detect_faces(face)[0].landmarks, 64)
    assert np.abs(pixels(tmp_path / "out" / "aligned.png")[8:56, 8:56] - pixels(alone)[8:56, 8:56]).mean() < 8
