"""The app's handlers, and every API endpoint of a running app through gradio_client."""

import socket
import threading
import time
import urllib.parse
from pathlib import Path

import gradio as gr
import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image

import app
from conftest import FIXTURES, REFERENCE
from stylegan import demos

MODEL = str(REFERENCE / "sg2_32_uncond.pkl")
CONDITIONAL = str(REFERENCE / "sg2_32_cond10.pkl")


@pytest.fixture(scope="module")
def blocks():
    return app.build_app(MODEL, "cpu", app.SourcePolicy([FIXTURES]))


@pytest.fixture(scope="module")
def studio(blocks):
    return blocks.studio


def test_generate_handler(studio):
    images, grid, recipe, _ = studio.generate(MODEL, "0-3")
    download = grid
    link = app.share_link(app.GenerateSettings)(MODEL, "0-3")
    assert [Path(p).name for p in images] == ["seed0000.png", "seed0001.png", "seed0002.png", "seed0003.png"]
    G = studio.model(MODEL)
    face = Image.open(images[2])
    assert face.size == (32, 32)
    assert np.array_equal(np.asarray(face), np.asarray(demos.run_recipe(G, demos.read_recipe(images[2]))))
    assert Image.open(grid).size == (4 * 32, 32)
    assert demos.read_recipe(download)["seeds"] == [0, 1, 2, 3]
    assert "tab=generate" in link and "seeds=0-3" in link


def test_style_mix_handler(studio):
    grid, note, recipe, _ = studio.style_mix(MODEL, "1, 2, 3", "4, 5, 6, 7", "coarse", 0.7, -1)
    assert Image.open(grid).size == (5 * 32, 4 * 32)
    assert "Layers 0-2 (4² to 8²)" in note
    grid, note, *_ = studio.style_mix(MODEL, "1", "2", "2-6", 1.0, -1)
    assert Image.open(grid).size == (2 * 32, 2 * 32) and "Layers 2-5" in note


def test_noise_handler(studio):
    images, heat, comparison, grid, note, recipe, w_file = studio.noise(MODEL, 3, 4, "fine", 1.0, 0.7, -1)
    assert [Path(p).name for p in images] == [f"seed0003-noise{k}.png" for k in range(4)]
    assert Image.open(heat).size == (32, 32)
    assert [Path(p).name for p, _ in comparison] == [f"noise-on-{g}.png" for g in ("all", "coarse", "fine", "none")]
    assert [label for _, label in comparison][0].startswith("all")
    realisations = [np.asarray(Image.open(p), dtype=float) for p in images]
    assert np.abs(realisations[0] - realisations[1]).mean() > 0
    assert "standard deviation" in note


def test_video_handler(studio):
    *progress, (player, recipe) = studio.video(MODEL, "1, 2", 3, 10, "z", "linear", False, 0.7, -1)
    assert len(progress) == 1  # one batch of four frames
    assert iio.imread(player).shape[0] == 4 and recipe["frames"] == 4


def test_model_info(studio):
    text = studio.describe(studio.model(MODEL))
    assert "StyleGAN2" in text and "32 px" in text and "cpu" in text
    original = str(FIXTURES / "stylegan1" / "sg1_32.pkl")
    assert "StyleGAN (2019)" in studio.describe(studio.model(original))


def test_catalog_entries_are_loadable_sources():
    from stylegan import loading
    assert app.CATALOG[0]["source"] == "bundled"
    assert any(e["family"] == "stylegan1" and "ffhq-1024" in e["source"] for e in app.CATALOG)
    for entry in app.CATALOG[1:]:
        assert entry["family"] in loading.FAMILIES and entry["source"].endswith(".pkl"), entry
        if entry["source"].startswith("hf://"):
            loading.parse_hub_url(entry["source"])
        else:
            assert entry["source"].startswith("https://"), entry


@pytest.mark.parametrize("call, message", [
    (lambda app: app.generate(MODEL, "1, x"), "is not a seed"),
    (lambda app: app.generate(MODEL, "-3"), "is not a seed"),
    (lambda app: app.generate(MODEL, ""), "No seeds"),
    (lambda app: app.generate(MODEL, "0-100"), "at most 32"),
    (lambda app: app.generate(MODEL, "1", psi=5), "outside [-2, 2]"),
    (lambda app: app.generate(MODEL, "1", class_idx=3), "unconditional"),
    (lambda app: app.generate(CONDITIONAL, "1"), "conditional"),
    (lambda app: app.generate(CONDITIONAL, "1", class_idx=12), "classes 0 to 9"),
    (lambda app: app.generate(MODEL, "1", translate_x=0.5), "StyleGAN3"),
    (lambda app: app.generate(str(FIXTURES / "no-such-model.pkl"), "1"), "no such checkpoint"),
    (lambda app: app.generate("/etc/passwd", "1"), "Local models are read only from"),
    (lambda app: app.generate("", "1"), "Choose a model"),
    (lambda app: app.style_mix(MODEL, "1", "2", "5-99", 0.7, -1), "outside this model's layers"),
    (lambda app: app.style_mix(MODEL, "1", "2", "banana", 0.7, -1), "not a layer range"),
    (lambda app: app.style_mix(MODEL, "1", "2", "fine", 0.7, -1), "no 'fine' layers"),
    (lambda app: app.style_mix(MODEL, "0-7", "0-7", "coarse", 0.7, -1), "at most 32"),
    (lambda app: app.noise(MODEL, -1, 4, "all", 1.0, 0.7, -1), "out of range"),
    (lambda app: app.noise(MODEL, 1, 4, "all", -2, 0.7, -1), "strength"),
    (lambda app: list(app.video(MODEL, "1", 10, 10, "w", "smooth", True, 0.7, -1)), "at least two"),
    (lambda app: list(app.video(MODEL, "1, 2, 3", 400, 10, "w", "smooth", True, 0.7, -1)), "at most 600"),
])
def test_bad_input_gives_a_sentence(studio, call, message):
    with pytest.raises(gr.Error) as e:
        call(studio)
    assert message in str(e.value)
    assert str(e.value).count("\n") == 0


def test_stylegan3_noise_is_explained(studio):
    with pytest.raises(gr.Error, match="no noise inputs"):
        studio.noise(str(REFERENCE / "sg3t_32.pkl"), 1, 4, "all", 1.0, 0.7, -1)


def test_query_values():
    """A link's values are read as their field's kind; what does not parse is left out."""
    assert app.VideoSettings.values_from_query({"fps": "0.5", "loop": "0", "seeds": "1,2"}) == {
        "fps": 0.5, "loop": False, "seeds": "1,2"}
    assert app.GenerateSettings.values_from_query({"psi": "abc", "cls": "3"}) == {"class_idx": 3}
    settings = app.MixSettings(row_seeds="1-3", col_seeds=[4, 9], layers="middle", psi=0.5)
    assert app.MixSettings(**app.MixSettings.values_from_query(
        dict(urllib.parse.parse_qsl(settings.to_query("m"))))) == settings


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def running_app(blocks):
    app.queue(blocks)
    port = _free_port()
    blocks.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}"
    blocks.close()


def test_every_endpoint_through_gradio_client(running_app):
    from gradio_client import Client
    client = Client(running_app, verbose=False)
    endpoints = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {"/generate", "/style_mix", "/noise", "/video", "/model_info"} <= endpoints

    gallery, grid, recipe, w_file = client.predict(model=MODEL, seeds="0-2", psi=0.7, noise_mode="const", api_name="/generate")
    assert len(gallery) == 3 and Image.open(grid).size == (3 * 32, 32)
    assert demos.read_recipe(grid)["kind"] == "generate" and recipe["seeds"] == [0, 1, 2]

    grid, caption, recipe, w_file = client.predict(model=MODEL, row_seeds="1, 2", col_seeds="3, 4, 5", layers="coarse",
                                           api_name="/style_mix")
    assert Image.open(grid).size == (4 * 32, 3 * 32) and recipe["layers"] == [0, 3]

    samples, heat, comparison, grid, caption, recipe, w_file = client.predict(model=MODEL, seed=1, num_samples=3,
                                                                      api_name="/noise")
    assert len(samples) == 3 and len(comparison) == 4 and Image.open(heat).size == (32, 32)

    player, recipe = client.predict(model=MODEL, seeds="1, 2", frames_per_transition=4, fps=10, api_name="/video")
    path = player["video"] if isinstance(player, dict) else player
    assert iio.imread(path).shape[0] == 8 and recipe["frames"] == 8  # 2 transitions (looping back) x 4 frames

    with pytest.raises(Exception, match="is not a seed"):
        client.predict(model=MODEL, seeds="seven", api_name="/generate")


def test_edit_inside_and_w_files_through_gradio_client(running_app):
    """The Edit and Inside endpoints by name; a W file saved by one tab is the start of another."""
    from gradio_client import Client, handle_file
    client = Client(running_app, verbose=False)
    gallery, grid, recipe, w_file = client.predict(model=MODEL, seeds="4, 7", api_name="/generate")
    saved = np.load(w_file)["w"]
    assert saved.shape == (2, 8, 32) and saved.dtype == np.float32

    strip, png, caption, recipe, edit_w, sweep = client.predict(model=MODEL, seed=7, method="ganspace",
                                                                components="0, 2*-1", strength=2, steps=5,
                                                                video=True, api_name="/edit")
    frames = iio.imread(sweep["video"] if isinstance(sweep, dict) else sweep)
    assert frames.shape == (48, 32, 32, 3)
    assert len(strip) == 5 and Image.open(png).size == (5 * 32, 32)
    assert recipe["components"] == [[0, 1.0], [2, -1.0]] and "ganspace" in caption
    assert np.array_equal(np.load(edit_w)["w"][2], saved[1])  # strength 0 in the middle: seed 7's w

    strip, png, caption, recipe, _, sweep = client.predict(model=MODEL, w_file=handle_file(w_file), strength=0,
                                                           steps=3, api_name="/edit")
    assert sweep is None
    assert recipe["w_file"].startswith("sha256:") and str(Path(w_file).parent) not in str(recipe)
    face = np.asarray(Image.open(gallery[0]["image"]))
    assert all(np.abs(np.asarray(Image.open(item["image"])).astype(int) - face).max() <= 1 for item in strip)

    face, channels, rgb, torgb, caption, recipe = client.predict(model=MODEL, seed=7, layer=2, channels=8,
                                                                 api_name="/layers")
    assert "b8.conv1" in caption and len(torgb) == 4  # 4, 8, 16 and 32 px
    assert Image.open(channels).size[0] >= 128

    with pytest.raises(Exception, match="greater than maximum value"):  # the slider's own bound
        client.predict(model=MODEL, strength=1000, api_name="/edit")
    with pytest.raises(Exception, match="Direction 40 does not exist: there are 32"):
        client.predict(model=MODEL, components="40", api_name="/edit")


def test_project_a_photo_through_gradio_client(running_app):
    from gradio_client import Client, handle_file
    client = Client(running_app, verbose=False)
    photo = Path(__file__).parent / "photos" / "astronaut.png"
    aligned, reconstruction, compare, w_file, caption, recipe = client.predict(
        model=MODEL, photo=handle_file(str(photo)), space="w", steps=50, api_name="/project")
    assert Image.open(aligned).size == (32, 32) and Image.open(compare).size == (64, 32)
    w = np.load(w_file)["w"]
    assert w.shape == (1, 8, 32) and np.array_equal(w[0, 0], w[0, -1])  # W: one w for all layers
    assert "PSNR" in caption and recipe["projected"]["space"] == "w" and "astronaut" not in str(recipe)
    with pytest.raises(Exception, match="No face was found"):
        blank = Path(aligned).with_name("blank.png")
        Image.new("RGB", (100, 100), "gray").save(blank)
        client.predict(model=MODEL, photo=handle_file(str(blank)), api_name="/project")


def test_endpoints_describe_their_parameters(running_app):
    """view_api() names each endpoint's parameters after the settings fields, with their defaults."""
    from gradio_client import Client
    api = Client(running_app, verbose=False).view_api(print_info=False, return_format="dict")["named_endpoints"]
    for endpoint, cls in [("/generate", app.GenerateSettings), ("/style_mix", app.MixSettings),
                          ("/noise", app.NoiseSettings), ("/video", app.VideoSettings), ("/edit", app.EditSettings),
                          ("/layers", app.LayersSettings)]:
        parameters = {p["parameter_name"]: p for p in api[endpoint]["parameters"]}
        offered = cls.app_fields()
        assert list(parameters) == ["model"] + [f.name for f in offered]
        for f in offered:
            if f.name != "class_idx":  # one class control serves every tab
                spec = f.metadata["spec"]
                assert parameters[f.name]["parameter_default"] in (f.default, app.settings.as_text(spec, f.default))
                assert parameters[f.name]["label"].lower() == spec.help.lower()
        assert "seeds" in api["/generate"]["description"] or endpoint != "/generate"


def test_visitors_asking_for_the_same_faces_at_once_all_get_them_whole(running_app):
    """The same faces at the same moment (the default seeds, a shared link) must not be rewritten in
    Gradio's cache while another visitor downloads them: that gave empty images."""
    from gradio_client import Client
    client = Client(running_app, verbose=False)
    jobs = [client.submit(MODEL, "0-15", api_name="/generate") for _ in range(16)]
    for job in jobs:
        gallery = job.result(timeout=300)[0]
        assert len(gallery) == 16
        for item in gallery:
            with Image.open(item["image"]) as face:
                assert face.size == (32, 32)


def test_one_model_request_at_a_time_on_a_cpu(running_app, studio):
    """Requests from different tabs wait for each other: on a CPU each already uses every core, and
    the memory budget is per request (Gradio's concurrency limit alone is per event)."""
    from gradio_client import Client
    G = studio.model(MODEL)
    running = most = 0
    lock = threading.Lock()

    def enter(module, args):
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.05)  # time for a request of another tab to overlap, were it let through

    def leave(module, args, output):
        nonlocal running
        with lock:
            running -= 1

    hooks = [G.synthesis.register_forward_pre_hook(enter), G.synthesis.register_forward_hook(leave)]
    try:
        client = Client(running_app, verbose=False)
        jobs = [client.submit(MODEL, "0-7", noise_mode="random", api_name="/generate"),
                client.submit(MODEL, "1, 2", "3, 4", "coarse", 0.7, -1, api_name="/style_mix"),
                client.submit(MODEL, 1, 4, "all", 1, 0.7, -1, api_name="/noise"),
                client.submit(MODEL, "1, 2", 8, 10, "w", "linear", True, 0.7, -1, api_name="/video")]
        for job in jobs:
            job.result(timeout=120)
    finally:
        for hook in hooks:
            hook.remove()
    assert most == 1


def test_a_failed_pick_keeps_the_model_in_use_and_says_why(studio):
    info, in_use, picker, note = studio.pick("FFHQ 1024 px (StyleGAN, 2019)", MODEL)  # offline here
    assert in_use == MODEL and picker["value"] == MODEL and info == gr.skip()
    assert note.startswith("Could not switch to FFHQ 1024 px (StyleGAN, 2019), so ") and "download failed" in note
    info, in_use, picker, note = studio.pick(MODEL, MODEL)
    assert in_use == MODEL and "StyleGAN2" in info and note == ""


def test_offline_the_catalog_marks_models_that_need_the_network():
    labels = dict((name, label) for label, name in app.catalog_choices(hub_online=False))
    assert labels[app.BUNDLED_NAME] == app.BUNDLED_NAME
    assert labels["FFHQ 256 px (StyleGAN2)"] == "FFHQ 256 px (StyleGAN2) (needs network)"
    assert all(label == name for label, name in app.catalog_choices(hub_online=True))


def test_uploads_are_picked_and_linked_by_their_file_name(studio, tmp_path):
    upload = tmp_path / "upload-1234" / "my faces.pkl"
    upload.parent.mkdir()
    upload.write_bytes(Path(MODEL).read_bytes())
    name = studio.uploaded_model(str(upload))
    assert name == "my faces.pkl"
    images, grid, recipe, _ = studio.generate(name, "1")
    link = app.share_link(app.GenerateSettings)(name, "1")
    assert "model=my+faces.pkl" in link and "upload-1234" not in link and "%2F" not in link
    # A receiver whose server lacks the file keeps its model, with a sentence.
    other = app.build_app(MODEL, "cpu", app.SourcePolicy([FIXTURES])).studio
    _, in_use, _, note = other.pick("my faces.pkl", "sg2_32_uncond.pkl")
    assert in_use == "sg2_32_uncond.pkl" and note.startswith("Could not switch to my faces.pkl")
