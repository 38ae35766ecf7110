"""StyleGAN in the browser: faces from seeds, style mixing, noise, interpolation videos.

python app.py [--host 127.0.0.1] [--port 7860] [--share] [--model SOURCE] [--device cpu]
              [--allow-dir DIR] [--allow-typed-sources] [--max-upload-mb N] [--memory-budget-mb N]
Also runs unchanged as a Hugging Face Space. Every computation is a stylegan.demos function;
this file only describes the interface.
"""

import argparse
import contextlib
import json
import math
import os
import random
import shutil
import tempfile
import threading
import time
import urllib.parse
from collections import OrderedDict
from pathlib import Path

import gradio as gr
import torch

import stylegan
from stylegan import demos, loading

ROOT = Path(__file__).resolve().parent
CATALOG = json.loads((ROOT / "catalog.json").read_text())
BUNDLED_NAME = CATALOG[0]["name"]
MAX_IMAGES = 32  # per request in the app (the library allows more)
MAX_FRAMES = 600
DEFAULT_MEMORY_BUDGET_MB = 4096  # what one request may use; a request estimated above it is refused
MEMORY_BUDGET = DEFAULT_MEMORY_BUDGET_MB * 2 ** 20
DEFAULT_MAX_UPLOAD_MB = 1024  # NVIDIA's largest generators are pickles of about 380 MB
# Every event that runs a model shares this concurrency group: Gradio's limit is per event otherwise,
# so the four tabs would compute at once, each with all cores and its own share of memory.
COMPUTE = "model"
OUTPUT_DIR = Path(tempfile.mkdtemp(prefix="stylegan-app-"))
OUTPUT_MAX_AGE = 3600  # seconds a result stays downloadable (Gradio's own copies are kept as long)


class ModelStore:
    """Loaded generators by source, the most recent few kept warm. Thread-safe.

    A request holds on to the generator it got, so switching models never changes a running request.
    """

    def __init__(self, device=None, keep=2):
        self.device = torch.device(device) if device else stylegan.default_device()
        self.keep = keep
        self.models = OrderedDict()
        self.lock = threading.Lock()
        self.hub_warning_shown = False

    def get(self, choice, progress=None):
        source = source_of(choice)
        with self.lock:
            if source in self.models:
                self.models.move_to_end(source)
                return self.models[source]
            if progress is not None:
                progress(0, desc=f"Loading {choice} ...")
            G = stylegan.load(None if source == "bundled" else source, device=self.device)
            G.display_name = choice
            self.models[source] = G
            while len(self.models) > self.keep:
                self.models.popitem(last=False)
            return G


class SourcePolicy:
    """Which typed model sources a visitor may load. Catalog models, uploads and hf:// paths
    always; local paths only inside the allowed directories (checkpoints/ and any --allow-dir),
    never elsewhere through ../, absolute paths or links; http(s) URLs only on a private app
    (they would let visitors make the server fetch any address). On a public app (--share or
    a Hugging Face Space) typed paths and URLs are off unless --allow-typed-sources."""

    def __init__(self, allowed_dirs=(), public=False, allow_typed=False):
        self.allowed_dirs = [Path(d).resolve() for d in [ROOT / "checkpoints", *allowed_dirs]]
        self.trusted_files = set()  # the model named at launch, and files visitors uploaded
        self.typed_sources = allow_typed or not public

    def check(self, source):
        if source == "bundled" or source.startswith("hf://"):
            return source
        if source.startswith(("http://", "https://")):
            if not self.typed_sources:
                raise gr.Error("This public app loads models from its list, hf:// paths and uploads, not from URLs.")
            return source
        path = Path(source).expanduser().resolve()
        if path in self.trusted_files:
            return str(path)
        if not self.typed_sources:
            raise gr.Error("This public app loads models from its list, hf:// paths and uploads, not from local paths.")
        if not any(path.is_relative_to(d) for d in self.allowed_dirs):
            where = ", ".join(str(d) for d in self.allowed_dirs)
            raise gr.Error(f"Local models are read only from {where}; start the app with --allow-dir to add a folder.")
        return str(path)


POLICY = SourcePolicy()


def source_of(choice):
    """A model picker value -> a load() source: catalog names map to their source; typed
    sources must pass the app's SourcePolicy."""
    choice = (choice or "").strip()
    for entry in CATALOG:
        if choice == entry["name"]:
            return entry["source"]
    if not choice:
        raise gr.Error("Choose a model first.")
    return POLICY.check(choice)


def uploaded_model(path):
    """An uploaded checkpoint becomes the model choice (Gradio has already enforced the size limit)."""
    if path:
        POLICY.trusted_files.add(Path(path).resolve())
    return path


def default_model(device, hub_online):
    """The bundled model offline; with the Hub, FFHQ at 256 px on a CPU and 1024 px on a GPU."""
    if not hub_online:
        return BUNDLED_NAME
    return "FFHQ 1024 px (StyleGAN2)" if device.type == "cuda" else "FFHQ 256 px (StyleGAN2)"


STORE = None  # set by build_app


def _model(choice, progress=None):
    try:
        return STORE.get(choice, progress)
    except loading.LoadError as e:
        raise gr.Error(str(e)) from None


def _user_errors(fn):
    """Demo and load errors become a gr.Error with their sentence; nothing else is swallowed."""
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (demos.DemoError, loading.LoadError) as e:
            raise gr.Error(str(e)) from None
        finally:
            loading.release_freed_memory()  # after each request
    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


def _output_folder():
    """A new folder for one request's files. Folders older than OUTPUT_MAX_AGE go on the way, so
    that an app that runs for months does not fill its disk."""
    now = time.time()
    try:
        for old in os.scandir(OUTPUT_DIR):
            if now - old.stat().st_mtime > OUTPUT_MAX_AGE:
                shutil.rmtree(old.path, ignore_errors=True)
        return Path(tempfile.mkdtemp(dir=OUTPUT_DIR))
    except OSError as e:
        raise gr.Error(f"The app cannot write its results ({e.strerror}); please try again later.") from None


def _save(image, recipe, name):
    path = _output_folder() / name
    return str(demos.save_png(image, path, recipe))


def _gallery_files(images, names, recipe=None):
    """A gallery's images as PNG files of this request, each with its own recipe when one is given.

    Handed images rather than files, Gradio writes them in place to a cache file named by their
    content: two requests that show the same face (the same seed, say) would rewrite it while the
    other's browser is still downloading it. Files are copied in under a new name and never rewritten.
    """
    folder = _output_folder()
    return [str(demos.save_png(image, folder / name, recipe and dict(recipe, output=f"image:{i}")))
            for i, (image, name) in enumerate(zip(images, names))]


def _share_link(tab, **params):
    query = urllib.parse.urlencode({"tab": tab, **{k: v for k, v in params.items() if v not in (None, "")}})
    return f"[Link to this result](?{query}) (open it to reproduce what you see)"


def _class(value):
    return None if value in (None, "", -1) else int(value)


FAMILY_NAMES = {"stylegan1": "StyleGAN (2019)", "stylegan2": "StyleGAN2", "stylegan3": "StyleGAN3"}


def model_info(choice, progress=gr.Progress(track_tqdm=True)):
    """What the chosen model is: family, resolution, layers, classes, parameters, device."""
    G = _model(choice, progress)
    params = sum(p.numel() for p in G.parameters())
    layers = ", ".join(f"{i}:{r}" for i, r in enumerate(G.synthesis.ws_resolutions))
    classes = f"{G.c_dim} classes (choose one below)" if G.c_dim else "unconditional"
    presets = "; ".join(f"**{k}** {v[2]}" for k, v in demos.mixing_presets(G).items())
    return (f"**{FAMILY_NAMES.get(G.family, G.family)}**, {G.img_resolution} px, {G.num_ws} style inputs (layer:resolution {layers}), "
            f"{classes}, {params / 1e6:.1f} M parameters, running on **{STORE.device.type}**.  \n"
            f"Style-mixing presets: {presets}.")


@_user_errors
def generate(model, seeds, psi, noise_mode, class_idx, translate_x, translate_y, rotate,
             progress=gr.Progress(track_tqdm=True)):
    """Faces from seeds: a gallery, a grid PNG with its recipe, and a link."""
    G = _model(model, progress)
    result = demos.generate(G, seeds, psi=psi, noise_mode=noise_mode, class_idx=_class(class_idx),
                            translate=(translate_x, translate_y), rotate=rotate, max_images=MAX_IMAGES,
                            max_memory=MEMORY_BUDGET)
    png = _save(result.grid, dict(result.recipe, output="grid"), "faces.png")
    images = _gallery_files(result.images, [f"seed{seed:04d}.png" for seed in result.recipe["seeds"]], result.recipe)
    link = _share_link("generate", model=model, seeds=seeds, psi=psi, noise=noise_mode, cls=class_idx)
    return images, png, png, link


@_user_errors
def style_mix(model, row_seeds, col_seeds, preset, custom_layers, psi, class_idx,
              progress=gr.Progress(track_tqdm=True)):
    """The paper's style-mixing figure: rows take layers [start, stop) from the column faces."""
    G = _model(model, progress)
    layers = custom_layers if preset == "custom" else preset
    result = demos.style_mix(G, row_seeds, col_seeds, layers=layers, psi=psi, class_idx=_class(class_idx),
                             max_images=MAX_IMAGES, max_memory=MEMORY_BUDGET)
    start, stop = result.extras["layers"]
    png = _save(result.grid, dict(result.recipe, output="grid"), "style-mixing.png")
    note = (f"Layers {start}-{stop - 1} ({G.synthesis.ws_resolutions[start]}² to "
            f"{G.synthesis.ws_resolutions[stop - 1]}²) come from the column faces." if stop > start
            else "No layers are mixed: every cell is its row's face.")
    link = _share_link("mix", model=model, rows=row_seeds, cols=col_seeds, preset=preset, layers=custom_layers,
                       psi=psi, cls=class_idx)
    return png, png, note + "  \n" + link


@_user_errors
def noise(model, seed, samples, layers, strength, psi, class_idx, progress=gr.Progress(track_tqdm=True)):
    """What the noise inputs change: realisations, their standard deviation, noise on layer groups."""
    G = _model(model, progress)
    result = demos.noise_study(G, seed, num_samples=int(samples), layers=layers, strength=strength, psi=psi,
                               class_idx=_class(class_idx), max_images=MAX_IMAGES, max_memory=MEMORY_BUDGET)
    png = _save(result.grid, dict(result.recipe, output="grid"), "noise.png")
    heat = _save(result.extras["heatmap"], dict(result.recipe, output="heatmap"), "noise-std.png")
    r = result.recipe
    images = _gallery_files(result.images, [f"seed{r['seed']:04d}-noise{r['noise_seed'] + k}.png"
                                            for k in range(len(result.images))], r)
    compared = _gallery_files(result.extras["comparison"], [f"noise-on-{group}.png"
                                                            for group in ("all", "coarse", "fine", "none")])
    comparison = list(zip(compared, result.extras["comparison_labels"]))
    link = _share_link("noise", model=model, seed=seed, samples=samples, layers=layers, strength=strength,
                       psi=psi, cls=class_idx)
    note = f"Largest per-pixel standard deviation: {result.extras['std_max']:.3f} (the heat map's brightest)."
    return images, heat, comparison, png, note + "  \n" + link


def video(model, seeds, frames, fps, space, easing, loop, psi, class_idx, progress=gr.Progress(track_tqdm=True)):
    """A smooth walk through the keyframe seeds' faces, as MP4.

    A generator, so that a cancelled request (the visitor left or pressed stop) ends at the next
    batch of frames: Gradio closes it there, and the video's steps remove their unfinished file.
    """
    folder = None
    try:
        G = _model(model, progress)
        folder = _output_folder()
        steps = demos.interpolation_video_steps(
            G, seeds, folder / "interpolation.mp4", frames_per_transition=int(frames), fps=fps, space=space,
            easing=easing, loop=loop, psi=psi, class_idx=_class(class_idx), max_frames=MAX_FRAMES,
            max_memory=MEMORY_BUDGET)
        with contextlib.closing(steps):
            while True:
                try:
                    done, total = next(steps)
                except StopIteration as finished:
                    path, recipe = finished.value
                    break
                progress(done / total, desc=f"frame {done} of {total}")
                yield gr.skip(), gr.skip(), gr.skip()
        folder = None  # finished: the video stays for download
    except (demos.DemoError, loading.LoadError) as e:
        raise gr.Error(str(e)) from None
    finally:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        loading.release_freed_memory()  # after each request
    link = _share_link("video", model=model, seeds=seeds, frames=frames, fps=fps, space=space, easing=easing,
                       loop=int(loop), psi=psi, cls=class_idx)
    yield str(path), str(path), f"{recipe['frames']} frames at {fps} fps.  \n" + link


def random_seeds(count=8):
    start = random.randint(0, 99_999)
    return f"{start}-{start + count - 1}"


def random_seed():
    return random.randint(0, 99_999)


def build_app(model=None, device=None, policy=None, memory_budget_mb=DEFAULT_MEMORY_BUDGET_MB):
    global STORE, POLICY, MEMORY_BUDGET
    STORE = ModelStore(device)
    if STORE.device.type == "cpu":
        stylegan.reuse_freed_memory()  # now, before Gradio's worker threads start (see its docstring)
    POLICY = policy or SourcePolicy()
    MEMORY_BUDGET = memory_budget_mb * 2 ** 20
    hub_online = loading.hub_reachable()
    initial = model or default_model(STORE.device, hub_online)
    if model and not model.startswith(("hf://", "http://", "https://")) and model not in (e["name"] for e in CATALOG):
        POLICY.trusted_files.add(Path(model).expanduser().resolve())  # named by whoever launched the app
    choices = [e["name"] for e in CATALOG]
    with gr.Blocks(title="StyleGAN: see and play with style-based face generation",
                   delete_cache=(OUTPUT_MAX_AGE, OUTPUT_MAX_AGE)) as app:
        gr.Markdown("# StyleGAN: style-based face generation\nEach face comes from a seed (a random vector z), "
                    "mapped to styles w that control the generator layer by layer: coarse layers set pose and face "
                    "shape, middle ones features, fine ones colour and micro-detail.")
        if not hub_online:
            gr.Markdown("*The Hugging Face Hub cannot be reached, so only the bundled model and models already "
                        "downloaded or uploaded will load.*", elem_id="offline-note")
        with gr.Row():
            model_box = gr.Dropdown(choices, value=initial, label="Model (or type a path, hf://owner/repo/file.pkl or an https:// URL)",
                                    allow_custom_value=True, scale=3)
            upload = gr.File(label="...or upload a .pkl / .safetensors", file_types=[".pkl", ".safetensors"], scale=1)
        info = gr.Markdown(elem_id="model-info")
        class_idx = gr.Number(label="Class (conditional models only; -1 for none)", value=-1, precision=0)

        with gr.Tabs() as tabs:
            with gr.Tab("Generate", id="generate"):
                gr.Markdown("Every seed is a different face. **Truncation psi** pulls the styles towards the average "
                            "face: lower psi, more typical and cleaner faces; psi 1 shows the model's full variety.")
                with gr.Row():
                    g_seeds = gr.Textbox("0-7", label="Seeds (like 0-7, 42)")
                    g_random = gr.Button("Random seeds", scale=0)
                    g_psi = gr.Slider(-1, 1.5, value=0.7, step=0.05, label="Truncation psi")
                    g_noise = gr.Radio(["const", "random", "none"], value="const", label="Noise")
                with gr.Accordion("StyleGAN3 only: translate and rotate the input", open=False):
                    g_tx = gr.Slider(-1, 1, value=0, step=0.05, label="Translate x")
                    g_ty = gr.Slider(-1, 1, value=0, step=0.05, label="Translate y")
                    g_rot = gr.Slider(-180, 180, value=0, step=1, label="Rotate (degrees)")
                g_run = gr.Button("Generate", variant="primary")
                g_gallery = gr.Gallery(label="Faces", columns=4, height="auto", elem_id="generate-gallery")
                g_grid = gr.Image(label="Grid", type="filepath", visible=False)
                g_file = gr.File(label="Download the grid (PNG with its recipe)")
                g_link = gr.Markdown()
                g_inputs = [model_box, g_seeds, g_psi, g_noise, class_idx, g_tx, g_ty, g_rot]
                g_outputs = [g_gallery, g_grid, g_file, g_link]
                gr.Examples([["0-7", 0.7, "const"], ["85, 100, 2021, 7", 0.5, "const"], ["0-3", 1.0, "random"]],
                            [g_seeds, g_psi, g_noise])
                g_random.click(random_seeds, None, g_seeds, api_name=False)
                g_run.click(generate, g_inputs, g_outputs, api_name="generate", concurrency_id=COMPUTE)

            with gr.Tab("Style mixing", id="mix"):
                gr.Markdown("Rows are faces whose styles are replaced, in a range of layers, by those of the column "
                            "faces (the StyleGAN paper's Figure 3). **Coarse** layers carry pose and face shape, "
                            "**middle** ones features and expression, **fine** ones colour and micro-detail.")
                with gr.Row():
                    m_rows = gr.Textbox("1, 2, 3", label="Row seeds (destination faces)")
                    m_cols = gr.Textbox("4, 5, 6, 7", label="Column seeds (style sources)")
                    m_random = gr.Button("Random seeds", scale=0)
                with gr.Row():
                    m_preset = gr.Radio(["coarse", "middle", "fine", "custom"], value="coarse", label="Layers from the columns")
                    m_layers = gr.Textbox("0-4", label="Custom range start-stop (stop not included)")
                    m_psi = gr.Slider(-1, 1.5, value=0.7, step=0.05, label="Truncation psi")
                m_run = gr.Button("Mix styles", variant="primary")
                m_grid = gr.Image(label="Style-mixing grid", type="filepath", elem_id="mix-grid")
                m_file = gr.File(label="Download (PNG with its recipe)")
                m_note = gr.Markdown()
                m_inputs = [model_box, m_rows, m_cols, m_preset, m_layers, m_psi, class_idx]
                gr.Examples([["1, 2, 3", "4, 5, 6, 7", "coarse"], ["1, 2, 3", "4, 5, 6, 7", "middle"],
                             ["1, 2, 3", "4, 5, 6, 7", "fine"]], [m_rows, m_cols, m_preset])
                m_random.click(lambda: (random_seeds(3), random_seeds(4)), None, [m_rows, m_cols], api_name=False)
                m_run.click(style_mix, m_inputs, [m_grid, m_file, m_note], api_name="style_mix",
                            concurrency_id=COMPUTE)

            with gr.Tab("Noise", id="noise"):
                gr.Markdown("Besides its styles, each layer gets random per-pixel noise. Changing only the noise "
                            "moves hair strands, stubble and pores but not who the person is (paper Figures 4-5). "
                            "The heat map shows where the realisations differ; noise on fine layers changes small "
                            "detail, on coarse layers larger curls.")
                with gr.Row():
                    n_seed = gr.Number(1, label="Seed", precision=0)
                    n_random = gr.Button("Random seed", scale=0)
                    n_samples = gr.Slider(2, 16, value=8, step=1, label="Noise realisations")
                    n_layers = gr.Radio(["all", "coarse", "fine", "none"], value="all", label="Noise on layers")
                    n_strength = gr.Slider(0, 3, value=1, step=0.1, label="Noise strength")
                    n_psi = gr.Slider(-1, 1.5, value=0.7, step=0.05, label="Truncation psi")
                n_run = gr.Button("Study the noise", variant="primary")
                with gr.Row():
                    n_gallery = gr.Gallery(label="Realisations", columns=4, height="auto", scale=2)
                    n_heat = gr.Image(label="Standard deviation (bright = more variation)", type="filepath", scale=1,
                                      elem_id="noise-heatmap")
                n_compare = gr.Gallery(label="Noise on all / coarse / fine / no layers", columns=4, height="auto")
                n_file = gr.File(label="Download (PNG with its recipe)")
                n_note = gr.Markdown()
                n_inputs = [model_box, n_seed, n_samples, n_layers, n_strength, n_psi, class_idx]
                gr.Examples([[1, 8, "all"], [1, 8, "fine"], [1, 8, "coarse"]], [n_seed, n_samples, n_layers])
                n_random.click(random_seed, None, n_seed, api_name=False)
                n_run.click(noise, n_inputs, [n_gallery, n_heat, n_compare, n_file, n_note], api_name="noise",
                            concurrency_id=COMPUTE)

            with gr.Tab("Interpolation video", id="video"):
                gr.Markdown("A smooth walk from face to face. In **Z** the path follows a great circle of the "
                            "Gaussian input (spherical interpolation); in **W** it is a straight line between "
                            "styles, which the mapping network has made more even, so changes are smoother.")
                with gr.Row():
                    v_seeds = gr.Textbox("1, 2, 3", label="Keyframe seeds")
                    v_random = gr.Button("Random seeds", scale=0)
                    v_frames = gr.Slider(2, 120, value=24, step=1, label="Frames per transition")
                    v_fps = gr.Slider(5, 60, value=24, step=1, label="Frames per second")
                with gr.Row():
                    v_space = gr.Radio(["z", "w"], value="w", label="Space")
                    v_easing = gr.Radio(["linear", "smooth"], value="smooth", label="Easing")
                    v_loop = gr.Checkbox(True, label="Loop back to the first face")
                    v_psi = gr.Slider(-1, 1.5, value=0.7, step=0.05, label="Truncation psi")
                v_run = gr.Button("Make the video", variant="primary")
                v_player = gr.Video(label="Video", elem_id="video-player")
                v_file = gr.File(label="Download the MP4 (recipe in its metadata)")
                v_note = gr.Markdown()
                v_inputs = [model_box, v_seeds, v_frames, v_fps, v_space, v_easing, v_loop, v_psi, class_idx]
                gr.Examples([["1, 2, 3", 24, "w"], ["10, 20, 30, 40", 12, "z"]], [v_seeds, v_frames, v_space])
                v_random.click(lambda: ", ".join(str(random_seed()) for _ in range(3)), None, v_seeds, api_name=False)
                v_run.click(video, v_inputs, [v_player, v_file, v_note], api_name="video", concurrency_id=COMPUTE)

        model_box.change(model_info, model_box, info, api_name="model_info", concurrency_id=COMPUTE)
        upload.upload(uploaded_model, upload, model_box, api_name=False)

        def restore(request: gr.Request):
            """Settings from the page's query string (?tab=mix&rows=1,2&...), then a first result."""
            q = dict(request.query_params) if request is not None else {}
            tab = q.get("tab", "generate")
            updates = {tabs: gr.Tabs(selected=tab if tab in ("generate", "mix", "noise", "video") else "generate")}
            if "model" in q:
                updates[model_box] = gr.Dropdown(value=q["model"])
            fields = {"generate": {"seeds": g_seeds, "psi": g_psi, "noise": g_noise},
                      "mix": {"rows": m_rows, "cols": m_cols, "preset": m_preset, "layers": m_layers, "psi": m_psi},
                      "noise": {"seed": n_seed, "samples": n_samples, "layers": n_layers, "strength": n_strength,
                                "psi": n_psi},
                      "video": {"seeds": v_seeds, "frames": v_frames, "fps": v_fps, "space": v_space,
                                "easing": v_easing, "loop": v_loop, "psi": v_psi}}.get(tab, {})
            for key, component in fields.items():
                if key in q:
                    updates[component] = _query_value(component, q[key])
            if "cls" in q:
                updates[class_idx] = _query_value(class_idx, q["cls"])
            return updates

        restored = app.load(restore, None, [tabs, model_box, class_idx, g_seeds, g_psi, g_noise, m_rows, m_cols,
                                            m_preset, m_layers, m_psi, n_seed, n_samples, n_layers, n_strength,
                                            n_psi, v_seeds, v_frames, v_fps, v_space, v_easing, v_loop, v_psi],
                            api_name=False)
        restored.then(model_info, model_box, info, api_name=False, concurrency_id=COMPUTE).then(
            generate, g_inputs, g_outputs, api_name=False, concurrency_id=COMPUTE)
    return app


def queue(app):
    """One model request at a time on a CPU (torch already uses every core), two on a GPU; at most
    32 waiting, beyond which visitors are told the app is busy."""
    app.queue(default_concurrency_limit=2 if STORE.device.type == "cuda" else 1, max_size=32)


def _query_value(component, text):
    """A query-string value as the component's type; a value that does not parse is ignored."""
    if isinstance(component, gr.Checkbox):
        return text.lower() in ("1", "true", "yes")
    if isinstance(component, (gr.Slider, gr.Number)):
        try:
            value = float(text)
        except ValueError:
            return gr.update()
        return value if math.isfinite(value) else gr.update()
    return text


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # A Hugging Face Space (and any Gradio host) says where to listen through Gradio's environment variables.
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                        help="address to listen on (0.0.0.0 for everyone; default: $GRADIO_SERVER_NAME or 127.0.0.1)")
    parser.add_argument("--port", type=int, default=os.environ.get("GRADIO_SERVER_PORT", "7860"),
                        help="port to listen on (default: $GRADIO_SERVER_PORT or 7860)")
    parser.add_argument("--share", action="store_true", help="also serve a public gradio.live link")
    parser.add_argument("--model", help="initial model: a catalog name, a path, hf://owner/repo/file.pkl or an https:// URL")
    parser.add_argument("--device", help="cpu, cuda or mps (default: the best available)")
    parser.add_argument("--allow-dir", action="append", default=[], metavar="DIR",
                        help="a folder typed model paths may read from, besides checkpoints/ (repeatable)")
    parser.add_argument("--allow-typed-sources", action="store_true",
                        help="with --share or on a Space, still accept typed local paths and URLs")
    parser.add_argument("--max-upload-mb", type=int, default=DEFAULT_MAX_UPLOAD_MB, help="largest model upload")
    parser.add_argument("--memory-budget-mb", type=int, default=DEFAULT_MEMORY_BUDGET_MB,
                        help="refuse requests estimated to need more memory than this")
    return parser.parse_args(argv)


def launch_options(args):
    """app.launch() arguments for the command line's settings."""
    return dict(server_name=args.host, server_port=args.port, share=args.share, allowed_paths=[str(OUTPUT_DIR)],
                max_file_size=f"{args.max_upload_mb}mb")


def main():
    args = parse_args()
    public = args.share or bool(os.environ.get("SPACE_ID"))
    policy = SourcePolicy(args.allow_dir, public=public, allow_typed=args.allow_typed_sources)
    app = build_app(args.model, args.device, policy, args.memory_budget_mb)
    queue(app)
    app.launch(**launch_options(args))


if __name__ == "__main__":
    main()
