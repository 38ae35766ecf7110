"""StyleGAN in the browser: faces from seeds, style mixing, noise, interpolation videos.

python app.py [--host 127.0.0.1] [--port 7860] [--share] [--model SOURCE] [--device cpu]
              [--allow-dir DIR] [--allow-typed-sources] [--max-upload-mb N] [--memory-budget-mb N]
Also runs unchanged as a Hugging Face Space. Every computation is a stylegan.demos function of a
settings object (stylegan.settings); this file only describes the interface. A tab is one
settings class, one Studio method and one block of interface in build_app.
"""

import argparse
import contextlib
import html
import inspect
import logging
import os
import random
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from pathlib import Path

import gradio as gr
import torch

try:  # Hugging Face ZeroGPU: a GPU is attached only while a function it decorates runs
    from spaces import GPU as on_gpu
except ImportError:
    def on_gpu(fn):
        return fn

import stylegan
from stylegan import demos, loading, settings
from stylegan.settings import (EditSettings, GenerateSettings, LayersSettings, MixSettings, NoiseSettings,
                               ProjectSettings, SettingsError, VideoSettings)

CATALOG = loading.read_catalog()
BUNDLED_NAME = CATALOG[0]["name"]
MAX_IMAGES = 32  # per request in the app (the library allows more)
MAX_FRAMES = 600
DEFAULT_MEMORY_BUDGET_MB = 4096  # what one request may use; a request estimated above it is refused
DEFAULT_MAX_UPLOAD_MB = 1024  # NVIDIA's largest generators are pickles of about 380 MB
# Every event that runs a model shares this concurrency group: Gradio's limit is per event otherwise,
# so the four tabs would compute at once, each with all cores and its own share of memory.
COMPUTE = "model"
OUTPUT_MAX_AGE = 3600  # seconds a result stays downloadable (Gradio's own copies are kept as long)
FAMILY_NAMES = {"stylegan1": "StyleGAN (2019)", "stylegan2": "StyleGAN2", "stylegan3": "StyleGAN3"}
log = logging.getLogger("stylegan.app")
# Small images (a 64 px model's faces, its heat map, a mixing grid) are shown enlarged with their pixels
# kept sharp (nearest neighbour), and whole: no scrolling inside a gallery.
CSS = """
#generate-gallery img, #noise-gallery img, #noise-compare img, #mix-grid img, #noise-heatmap img, #video-player video,
#edit-gallery img, #edit-video video, #photo-aligned img, #photo-preview img, #photo-compare img, #layers-face img,
#layers-grid img, #layers-rgb img, #layers-torgb img {
  image-rendering: pixelated;
}
#generate-gallery .grid-container, #noise-gallery .grid-container, #noise-compare .grid-container,
#edit-gallery .grid-container, #layers-torgb .grid-container {
  grid-template-columns: repeat(var(--grid-cols), minmax(0, 1fr)) !important;
}
@media (max-width: 640px) {  /* a phone: two faces a row */
  #generate-gallery .grid-container, #noise-gallery .grid-container, #noise-compare .grid-container,
  #edit-gallery .grid-container, #layers-torgb .grid-container {
    grid-template-columns: repeat(2, minmax(0, 1fr)) !important;
  }
}
#generate-gallery .grid-wrap, #noise-gallery .grid-wrap, #noise-compare .grid-wrap, #edit-gallery .grid-wrap,
#layers-torgb .grid-wrap {
  max-height: none !important; height: auto !important; overflow: visible !important;
}
#mix-grid img, #noise-heatmap img, #video-player video, #edit-video video, #layers-face img, #layers-grid img,
#layers-rgb img, #photo-aligned img, #photo-preview img, #photo-compare img {
  width: 100% !important; height: auto !important; max-height: none !important; object-fit: contain;
}
#mix-grid .image-container, #mix-grid .image-frame, #mix-grid button, #noise-heatmap .image-container,
#noise-heatmap .image-frame, #noise-heatmap button, #layers-face .image-container, #layers-face .image-frame,
#layers-face button, #layers-grid .image-container, #layers-grid .image-frame, #layers-grid button,
#layers-rgb .image-container, #layers-rgb .image-frame, #layers-rgb button, #photo-aligned .image-container,
#photo-aligned .image-frame, #photo-aligned button, #photo-preview .image-container, #photo-preview .image-frame,
#photo-preview button, #photo-compare .image-container, #photo-compare .image-frame, #photo-compare button {
  width: 100% !important; height: auto !important; max-height: none !important;
}
#mix-grid img { width: min(100%, 768px) !important; margin: 0 auto; }
#video-player video, #edit-video video { width: min(100%, 512px) !important; margin: 0 auto; display: block; }
"""


class ModelStore:
    """Loaded generators by source, the most recent few kept warm. Thread-safe.

    A request holds on to the generator it got, so switching models never changes a running request.
    """

    def __init__(self, device=None, keep=2):
        self.device = torch.device(device) if device else stylegan.default_device()
        self.keep = keep
        self.models = OrderedDict()
        self.lock = threading.Lock()

    def get(self, source, name=None, progress=None):
        with self.lock:
            if source in self.models:
                self.models.move_to_end(source)
                return self.models[source]
            if progress is not None:
                progress(0, desc=f"Loading {name or source} ...")
            G = stylegan.load(None if source == "bundled" else source, device=self.device)
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
        self.allowed_dirs = [Path(d).resolve() for d in [loading.CHECKPOINTS, *allowed_dirs]]
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


def default_model(device, hub_online):
    """The bundled model offline; with the Hub, FFHQ at 256 px on a CPU and 1024 px on a GPU."""
    if not hub_online:
        return BUNDLED_NAME
    return "FFHQ 1024 px (StyleGAN2)" if device.type == "cuda" else "FFHQ 256 px (StyleGAN2)"


def catalog_choices(hub_online):
    """The picker's (label, name) pairs; without the Hub, models not downloaded yet say so."""
    return [(e["name"] if hub_online or loading.is_local(e["source"]) else f"{e['name']} (needs network)", e["name"])
            for e in CATALOG]


def people_error(e):
    """A gr.Error showing a sentence meant for people whole (the page renders it as HTML); the
    server's console gets one line, not a traceback."""
    return gr.Error(html.escape(str(e), quote=False), print_exception=False)


def endpoint(cls, compute, inputs=()):
    """An event handler (and API endpoint) for a settings class: its parameters are the model, the
    task's `inputs` that are not settings (a photo: never in a recipe or link), and the settings
    fields the app offers, by name, with their defaults; it builds the settings (the only check of
    the inputs) and calls compute(model, settings, progress, *inputs).

    A person's mistake becomes a gr.Error with its sentence, logged in one line; anything else is
    a bug: logged once with its traceback and shown as a short sentence.
    """
    offered = cls.app_fields()
    names = [f.name for f in offered]
    progress_default = gr.Progress(track_tqdm=True)

    parameter = inspect.Parameter
    signature = inspect.Signature(
        [parameter(name, parameter.POSITIONAL_OR_KEYWORD) for name in ("model", *inputs)]
        + [parameter(f.name, parameter.POSITIONAL_OR_KEYWORD, default=f.default) for f in offered]
        + [parameter("progress", parameter.POSITIONAL_OR_KEYWORD, default=progress_default)])

    def values(args, kwargs):
        """Gradio passes the values by position; Python callers may name them."""
        given = signature.bind(*args, **kwargs).arguments
        fields = {name: given[name] for name in names if name in given}
        return given["model"], cls(**fields), given.get("progress"), [given[name] for name in inputs]

    if inspect.isgeneratorfunction(compute):
        def handler(*args, **kwargs):
            with _reported(cls):
                model, task, progress, extra = values(args, kwargs)
                yield from compute(model, task, progress, *extra)
    else:
        def handler(*args, **kwargs):
            with _reported(cls):
                model, task, progress, extra = values(args, kwargs)
                return compute(model, task, progress, *extra)
    handler.__signature__ = signature
    handler.__name__ = compute.__name__
    handler.__doc__ = compute.__doc__ + "\n\nArgs:\n    model: a catalog name, an uploaded file's name or an hf:// path\n" + "".join(
        f"    {name}: see above\n" for name in inputs) + "".join(
        f"    {f.name}: {settings.spec_of(f).help}\n" for f in offered)
    return handler


@contextlib.contextmanager
def _reported(cls):
    try:
        yield
    except gr.Error as e:
        log.info("%s refused: %s", cls.kind, e.message)
        e.print_exception = False
        raise
    except (SettingsError, loading.LoadError) as e:
        log.info("%s refused: %s", cls.kind, e)
        raise people_error(e) from None
    except Exception:
        log.exception("%s failed", cls.kind)
        raise gr.Error("Something went wrong on the server (a bug, logged there); please try again.") from None
    finally:
        loading.release_freed_memory()  # after each request


class Studio:
    """The app's state, bound into its handlers: the loaded models, which sources visitors may
    load, the memory budget of a request and the folder of results."""

    def __init__(self, store, policy, memory_budget, output_dir=None):
        self.store, self.policy, self.memory_budget = store, policy, memory_budget
        self.output_dir = Path(output_dir or tempfile.mkdtemp(prefix="stylegan-app-"))
        self.files = {}  # file name -> path of checkpoints uploaded or named at launch
        self.generate = on_gpu(endpoint(GenerateSettings, self._generate))
        self.style_mix = on_gpu(endpoint(MixSettings, self._style_mix))
        self.noise = on_gpu(endpoint(NoiseSettings, self._noise))
        self.video = on_gpu(endpoint(VideoSettings, self._video))
        self.edit = on_gpu(endpoint(EditSettings, self._edit))
        self.layers = on_gpu(endpoint(LayersSettings, self._layers))
        self.project = on_gpu(endpoint(ProjectSettings, self._project, inputs=("photo",)))

    def source_of(self, choice):
        """A model picker value -> a load() source: catalog names map to their source; typed
        sources must pass the app's SourcePolicy."""
        choice = (choice or "").strip()
        if choice in self.files:
            return str(self.files[choice])
        for entry in CATALOG:
            if choice == entry["name"]:
                return entry["source"]
        if not choice:
            raise gr.Error("Choose a model first.")
        return self.policy.check(choice)

    def model(self, choice, progress=None):
        return self.store.get(self.source_of(choice), choice, progress)

    def add_file(self, path):
        """A checkpoint file this app may load (an upload, the model named at launch), picked and linked
        by its file name: links never show where the server keeps its files."""
        path = Path(path).expanduser().resolve()
        self.policy.trusted_files.add(path)
        self.files[path.name] = path
        return path.name

    def uploaded_model(self, path):
        """An uploaded checkpoint becomes the model choice (Gradio has already enforced the size limit)."""
        return self.add_file(path) if path else gr.skip()

    def pick(self, choice, in_use, progress=gr.Progress(track_tqdm=True)):
        """A model picked in the page: (its description, the model now in use, the picker, a note).
        A pick that fails keeps the model in use (and the results on screen) and says why."""
        try:
            G = self.model(choice, progress)
        except (loading.LoadError, gr.Error) as e:
            reason = e.message if isinstance(e, gr.Error) else str(e)
            log.info("model pick refused: %s", reason)
            return (gr.skip(), in_use, gr.update(value=in_use),
                    html.escape(f"Could not switch to {choice}, so {in_use} stays in use: {reason}", quote=False))
        return self.describe(G), choice, gr.skip(), ""

    def describe(self, G):
        """What a model is: family, resolution, layers, classes, parameters, device."""
        params = sum(p.numel() for p in G.parameters())
        layers = ", ".join(f"{i}:{r}" for i, r in enumerate(G.synthesis.ws_resolutions))
        classes = f"{G.c_dim} classes (choose one below)" if G.c_dim else "unconditional"
        presets = "; ".join(f"**{k}** {v[2]}" for k, v in settings.mixing_presets(G).items())
        return (f"**{FAMILY_NAMES.get(G.family, G.family)}**, {G.img_resolution} px, {G.num_ws} style inputs "
                f"(layer:resolution {layers}), {classes}, {params / 1e6:.1f} M parameters, running on "
                f"**{self.store.device.type}**.  \nStyle-mixing presets: {presets}.")

    # -- files of results
    def output_folder(self):
        """A new folder for one request's files. Folders older than OUTPUT_MAX_AGE go on the way, so
        that an app that runs for months does not fill its disk."""
        now = time.time()
        try:
            for old in os.scandir(self.output_dir):
                if now - old.stat().st_mtime > OUTPUT_MAX_AGE:
                    shutil.rmtree(old.path, ignore_errors=True)
            return Path(tempfile.mkdtemp(dir=self.output_dir))
        except OSError as e:
            raise gr.Error(f"The app cannot write its results ({e.strerror}); please try again later.") from None

    def save(self, image, recipe, name):
        return str(demos.save_png(image, self.output_folder() / name, recipe))

    def save_w(self, result, name):
        """The ws of a result's faces as a W file in NVIDIA's layout, for download."""
        return str(demos.save_w(self.output_folder() / name, result.ws))

    def gallery_files(self, images, names, recipe=None):
        """A gallery's images as PNG files of this request, each with its own recipe when one is given.

        Handed images rather than files, Gradio writes them in place to a cache file named by their
        content: two requests that show the same face (the same seed, say) would rewrite it while the
        other's browser is still downloading it. Files are copied in under a new name and never rewritten.
        """
        folder = self.output_folder()
        return [str(demos.save_png(image, folder / name, recipe and dict(recipe, output=f"image:{i}")))
                for i, (image, name) in enumerate(zip(images, names))]

    # -- the tabs
    def _generate(self, model, task, progress):
        """Faces from seeds (or a W file's ws). Returns the faces (PNG files with their recipes), the grid,
        the recipe and the faces' W file (NVIDIA's layout)."""
        G = self.model(model, progress)
        result = demos.generate(G, task, max_images=MAX_IMAGES, max_memory=self.memory_budget)
        grid = self.save(result.grid, dict(result.recipe, output="grid"), "faces.png")
        names = ([f"w{i:04d}.png" for i in range(len(result.images))] if task.w_file else
                 [f"seed{seed:04d}.png" for seed in result.recipe["seeds"]])
        images = self.gallery_files(result.images, names, result.recipe)
        return images, grid, result.recipe, self.save_w(result, "faces-w.npz")

    def _style_mix(self, model, task, progress):
        """The paper's style-mixing figure: rows take layers [start, stop) from the column faces.
        Returns the grid (PNG with its recipe), a caption and the recipe."""
        G = self.model(model, progress)
        result = demos.style_mix(G, task, max_images=MAX_IMAGES, max_memory=self.memory_budget)
        start, stop = result.extras["layers"]
        res = G.synthesis.ws_resolutions
        caption = (f"Layers {start}-{stop - 1} ({res[start]}² to {res[stop - 1]}²) come from the column faces."
                   if stop > start else "No layers are mixed: every cell is its row's face.")
        return (self.save(result.grid, dict(result.recipe, output="grid"), "style-mixing.png"), caption, result.recipe,
                self.save_w(result, "mixed-w.npz"))

    def _edit(self, model, task, progress):
        """A face moved along semantic directions. Returns the strip's faces (PNGs with their recipe), the
        strip, a caption, the recipe and the faces' W file (NVIDIA's layout)."""
        G = self.model(model, progress)
        result = demos.edit(G, task, max_images=MAX_IMAGES, max_memory=self.memory_budget)
        x = result.extras
        images = self.gallery_files(result.images, [f"edit{i:02d}.png" for i in range(len(result.images))],
                                    result.recipe)
        labelled = list(zip(images, [f"{offset:+g}" for offset in x["offsets"]]))
        start, stop = x["layers"]
        res = G.synthesis.ws_resolutions
        shares = ", ".join(f"direction {i}: {share:.1%}" for (i, _), share in zip(task.components, x["explained"]))
        share_of = "of W's variance" if x["method"] == "ganspace" else "of the total"
        caption = (f"{x['method']} ({shares} {share_of}); layers {start}-{stop - 1} ({res[start]}² to "
                   f"{res[stop - 1]}²); from -{task.strength:g} to +{task.strength:g} standard deviations of W.")
        strip = self.save(result.grid, dict(result.recipe, output="grid"), "edit.png")
        sweep = None
        if task.video:
            sweep = self.output_folder() / "edit-sweep.mp4"
            for done, total in demos.edit_video_steps(G, task, sweep, max_memory=self.memory_budget):
                if progress is not None:
                    progress(done / total, desc=f"video frame {done} of {total}")
            sweep = str(sweep)
        return labelled, strip, caption, result.recipe, self.save_w(result, "edit-w.npz"), sweep

    def _project(self, model, task, progress, photo):
        """Your own photo (a file; it goes into no link, log line or recipe): its face aligned as FFHQ's,
        then found in W or W+. Yields the aligned crop, the latest preview, target | reconstruction, the
        W file (NVIDIA's layout), a caption and the reconstruction's recipe, updated as it goes.
        A generator, so that a cancel stops it at the next step."""
        if not photo:
            raise gr.Error("Upload a photo first.")
        G = self.model(model, progress)
        steps = demos.project_steps(G, task, photo, max_memory=self.memory_budget)
        folder = self.output_folder()  # everything made from the photo: removed on a cancel or an error
        try:
            with contextlib.closing(steps):
                while True:
                    try:
                        step = next(steps)
                    except StopIteration as finished:
                        result = finished.value
                        break
                    if step.aligned is not None:
                        aligned = str(demos.save_png(step.aligned, folder / "aligned.png"))
                        yield aligned, gr.skip(), gr.skip(), gr.skip(), "Aligned; finding it in W...", gr.skip()
                    elif step.preview is not None:
                        preview = str(demos.save_png(step.preview, folder / f"step{step.step:04d}.png"))
                        yield (gr.skip(), preview, gr.skip(), gr.skip(),
                               f"Step {step.step} of {step.total}, loss {step.loss:.4f}", gr.skip())
                    if progress is not None and step.step:
                        progress(step.step / step.total, desc=f"step {step.step} of {step.total}")
            files = demos.save_pngs(folder / "result", {"reconstruction.png": (result.reconstruction, result.recipe),
                                                        "compare.png": (result.comparison, None)},
                                    {"projected_w.npz": result.w_file})
        except BaseException:  # also GeneratorExit: the visitor left or pressed stop
            shutil.rmtree(folder, ignore_errors=True)
            raise
        caption = " ".join(result.notes + [f"PSNR {result.psnr:.1f} dB against the aligned photo; losses: "
                                           f"{', '.join(result.losses)}. Use the W file in the other tabs below."])
        yield aligned, str(files[0]), str(files[1]), str(files[2]), caption, result.recipe

    def _layers(self, model, task, progress):
        """A look inside one layer. Returns the face, the strongest channels, the channels as RGB, what each
        resolution's toRGB adds (StyleGAN2 skip models), a caption and the recipe."""
        G = self.model(model, progress)
        result = demos.look_inside(G, task, max_images=MAX_IMAGES, max_memory=self.memory_budget)
        x = result.extras
        layer = x["layer"]
        r = result.recipe
        grid = self.save(result.grid, dict(r, output="grid"), "channels.png")
        rgb = self.save(x["rgb"], dict(r, output="rgb"), "channels-rgb.png")
        face = self.save(x["face"], None, "face.png")
        torgb = []
        if x["torgb"]:
            files = self.gallery_files([picture for _, picture in x["torgb"]],
                                       [f"torgb-{res}.png" for res, _ in x["torgb"]])
            torgb = list(zip(files, [f"{res}×{res} toRGB" for res, _ in x["torgb"]]))
        listing = ", ".join(f"{info.index}: {info.name} ({info.resolution}²)" for info in x["layers"])
        caption = (f"Layer {layer.index}, **{layer.name}**: {layer.resolution}×{layer.resolution}, {layer.channels} "
                   f"channels; shown: the {len(x['channels'])} strongest ({', '.join(map(str, x['channels']))}). "
                   f"{x['torgb_reason'] or 'Grey means a toRGB adds nothing there.'}  \nThis model's layers: {listing}.")
        return face, grid, rgb, torgb, caption, r

    def _noise(self, model, task, progress):
        """What the noise inputs change. Returns the realisations, their standard deviation's heat
        map, the same noise on all / coarse / fine / no layers, the grid, a caption and the recipe."""
        G = self.model(model, progress)
        result = demos.noise_study(G, task, max_images=MAX_IMAGES, max_memory=self.memory_budget)
        r = result.recipe
        heat = self.save(result.extras["heatmap"], dict(r, output="heatmap"), "noise-std.png")
        images = self.gallery_files(result.images, [f"seed{r['seed']:04d}-noise{r['noise_seed'] + k}.png"
                                                    for k in range(len(result.images))], r)
        compared = self.gallery_files(result.extras["comparison"],
                                      [f"noise-on-{group}.png" for group in settings.NOISE_GROUPS])
        comparison = list(zip(compared, result.extras["comparison_labels"]))
        grid = self.save(result.grid, dict(r, output="grid"), "noise.png")
        caption = (f"Largest per-pixel standard deviation: {result.extras['std_max']:.3f} "
                   "(the heat map's brightest).")
        return images, heat, comparison, grid, caption, r, self.save_w(result, "face-w.npz")

    def _video(self, model, task, progress):
        """A smooth walk through the keyframe seeds' faces, as MP4. Returns the video and the recipe.

        A generator, so that a cancelled request (the visitor left or pressed stop) ends at the next
        batch of frames: Gradio closes it there, and the video's steps remove their unfinished file.
        """
        folder = None
        try:
            G = self.model(model, progress)
            folder = self.output_folder()
            steps = demos.interpolation_video_steps(G, task, folder / "interpolation.mp4", max_frames=MAX_FRAMES,
                                                    max_memory=self.memory_budget)
            with contextlib.closing(steps):
                while True:
                    try:
                        done, total = next(steps)
                    except StopIteration as finished:
                        path, recipe = finished.value
                        break
                    if progress is not None:
                        progress(done / total, desc=f"frame {done} of {total}")
                    yield gr.skip(), gr.skip()
            folder = None  # finished: the video stays for download
        finally:
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
        yield str(path), recipe


TABS = {cls.tab: cls for cls in (GenerateSettings, MixSettings, NoiseSettings, VideoSettings, EditSettings,
                                  LayersSettings)}


def share_link(cls):
    """The page's link to a tab's result: its settings in the query string."""
    names = [f.name for f in cls.app_fields()]

    def link(model, *values):
        try:
            task = cls(**dict(zip(names, values)))
        except SettingsError:
            return ""
        if any(isinstance(getattr(task, name), settings.GivenFile) for name in names):
            return "This result starts from an uploaded file, which links do not carry: share the file and its recipe."
        return f"[Link to this result](?{task.to_query(model)}) (open it to see the same result)"
    return link


def controls(cls, names, into):
    """Components for some of a settings class's fields, from their declarations; also added to
    `into` ({field: component}), the tab's inputs."""
    fields = {f.name: f for f in cls.fields()}
    made = []
    for name in names:
        f = fields[name]
        spec = settings.spec_of(f)
        options = dict(label=spec.help[0].upper() + spec.help[1:])
        if spec.kind == "seeds":
            made.append(gr.Textbox(settings.as_text(spec, f.default), **options))
        elif spec.kind == "seed" or spec.kind == "int" and spec.low is None:
            made.append(gr.Number(f.default, precision=0, minimum=spec.low, maximum=spec.high, **options))
        elif spec.kind == "file":
            made.append(gr.File(label=options["label"], file_types=[".npz", ".npy"], type="filepath"))
        elif spec.kind in ("float", "int"):
            made.append(gr.Slider(spec.low, spec.high, value=f.default, step=spec.step, **options))
        elif spec.kind == "choice":
            made.append(gr.Radio(list(spec.choices), value=f.default, **options))
        elif spec.kind == "components":
            made.append(gr.Textbox(settings.as_text(spec, settings.parse_components(f.default)), **options))
        elif spec.kind == "layers":
            made.append(gr.Dropdown(list(spec.choices), value=f.default, allow_custom_value=True, **options))
        elif spec.kind == "bool":
            made.append(gr.Checkbox(f.default, **options))
        else:
            made.append(gr.Textbox(f.default, **options))
        into[name] = made[-1]
    return made


def app_inputs(cls, components):
    """The components of a tab's in-app fields, in field order (the endpoint's parameter order)."""
    return [components[f.name] for f in cls.app_fields()]


def random_seeds(count=8):
    start = random.randint(0, 99_999)
    return f"{start}-{start + count - 1}"


def random_seed():
    return random.randint(0, 99_999)


def build_app(model=None, device=None, policy=None, memory_budget_mb=DEFAULT_MEMORY_BUDGET_MB):
    """The Blocks of the app, with its Studio (state and handlers) as `.studio`."""
    store = ModelStore(device)
    if store.device.type == "cpu":
        stylegan.reuse_freed_memory()  # now, before Gradio's worker threads start (see its docstring)
    studio = Studio(store, policy or SourcePolicy(), memory_budget_mb * 2 ** 20)
    hub_online = loading.hub_reachable()
    initial = model or default_model(store.device, hub_online)
    if model and not model.startswith(("hf://", "http://", "https://")) and model not in (e["name"] for e in CATALOG):
        initial = studio.add_file(model)  # named by whoever launched the app
    with gr.Blocks(title="StyleGAN: see and play with style-based face generation",
                   delete_cache=(OUTPUT_MAX_AGE, OUTPUT_MAX_AGE)) as app:
        gr.Markdown("# StyleGAN: style-based face generation\nEach face comes from a seed (a random vector z), "
                    "mapped to styles w that control the generator layer by layer: coarse layers set pose and face "
                    "shape, middle ones features, fine ones colour and micro-detail.")
        if not hub_online:
            gr.Markdown("*The Hugging Face Hub cannot be reached, so only the bundled model and models already "
                        "downloaded or uploaded will load.*", elem_id="offline-note")
        with gr.Row():
            model_box = gr.Dropdown(catalog_choices(hub_online), value=initial, allow_custom_value=True, scale=3,
                                    label="Model (or type a path, hf://owner/repo/file.pkl or an https:// URL)")
            upload = gr.File(label="...or upload a .pkl / .pt / .safetensors", file_types=[".pkl", ".pt", ".safetensors"], scale=1)
        pick_note = gr.Markdown(elem_id="pick-note")
        info = gr.Markdown(elem_id="model-info")
        model_in_use = gr.State(initial)
        class_idx = gr.Number(label="Class (conditional models only; -1 for none)", value=-1, precision=0)
        inputs = {tab: {"class_idx": class_idx} for tab in TABS}  # tab -> {field: component}
        results = {}  # tab -> (outputs of its endpoint, its caption / link Markdown)

        with gr.Tabs() as tabs:
            with gr.Tab("Generate", id="generate"):
                gr.Markdown("Every seed is a different face. **Truncation psi** pulls the styles towards the average "
                            "face: lower psi, more typical and cleaner faces; psi 1 shows the model's full variety.")
                with gr.Row():
                    seeds, = controls(GenerateSettings, ["seeds"], inputs["generate"])
                    g_random = gr.Button("Random seeds", scale=0)
                    psi, noise_mode = controls(GenerateSettings, ["psi", "noise_mode"], inputs["generate"])
                with gr.Accordion("More: truncation cutoff, noise seed, start from a W file", open=False):
                    with gr.Row():
                        controls(GenerateSettings, ["truncation_cutoff", "noise_seed", "w_file"], inputs["generate"])
                with gr.Accordion("StyleGAN3 only: translate and rotate the input", open=False):
                    controls(GenerateSettings, ["translate_x", "translate_y", "rotate"], inputs["generate"])
                g_run = gr.Button("Generate", variant="primary")
                g_gallery = gr.Gallery(label="Faces", columns=4, height="auto", elem_id="generate-gallery")
                with gr.Row():
                    g_grid = gr.File(label="Download the grid (PNG with its recipe)")
                    g_w = gr.File(label="Their W (.npz, the layout of NVIDIA's projected_w)")
                g_recipe = gr.JSON(label="Recipe", visible=False)
                g_note = gr.Markdown()
                results["generate"] = ([g_gallery, g_grid, g_recipe, g_w], g_note)
                gr.Examples([["0-7", 0.7, "const"], ["85, 100, 2021, 7", 0.5, "const"], ["0-3", 1.0, "random"]],
                            [seeds, psi, noise_mode])
                g_random.click(random_seeds, None, seeds, api_name=False)
                g_run_event = g_run.click(studio.generate, [model_box, *app_inputs(GenerateSettings, inputs["generate"])],
                                          results["generate"][0], api_name="generate", concurrency_id=COMPUTE)

            with gr.Tab("Style mixing", id="mix"):
                gr.Markdown("Rows are faces whose styles are replaced, in a range of layers, by those of the column "
                            "faces (the StyleGAN paper's Figure 3). **Coarse** layers carry pose and face shape, "
                            "**middle** ones features and expression, **fine** ones colour and micro-detail.")
                with gr.Row():
                    rows, cols = controls(MixSettings, ["row_seeds", "col_seeds"], inputs["mix"])
                    m_random = gr.Button("Random seeds", scale=0)
                with gr.Row():
                    layers, _ = controls(MixSettings, ["layers", "psi"], inputs["mix"])
                with gr.Accordion("Rows from a W file (your own faces)", open=False) as m_w_box:
                    controls(MixSettings, ["w_file"], inputs["mix"])
                m_run = gr.Button("Mix styles", variant="primary")
                m_grid = gr.Image(label="Style-mixing grid (PNG with its recipe)", type="filepath", elem_id="mix-grid")
                m_caption = gr.Markdown()
                m_w = gr.File(label="The mixed faces' W (.npz, NVIDIA's layout)")
                m_recipe = gr.JSON(label="Recipe", visible=False)
                m_note = gr.Markdown()
                results["mix"] = ([m_grid, m_caption, m_recipe, m_w], m_note)
                gr.Examples([["1, 2, 3", "4, 5, 6, 7", "coarse"], ["1, 2, 3", "4, 5, 6, 7", "middle"],
                             ["1, 2, 3", "4, 5, 6, 7", "fine"]], [rows, cols, layers])
                m_random.click(lambda: (random_seeds(3), random_seeds(4)), None, [rows, cols], api_name=False)
                m_run_event = m_run.click(studio.style_mix, [model_box, *app_inputs(MixSettings, inputs["mix"])],
                                          results["mix"][0], api_name="style_mix", concurrency_id=COMPUTE)

            with gr.Tab("Noise", id="noise"):
                gr.Markdown("Besides its styles, each layer gets random per-pixel noise. Changing only the noise "
                            "moves hair strands, stubble and pores but not who the person is (paper Figures 4-5). "
                            "The heat map shows where the realisations differ; noise on fine layers changes small "
                            "detail, on coarse layers larger curls.")
                with gr.Row():
                    seed, = controls(NoiseSettings, ["seed"], inputs["noise"])
                    n_random = gr.Button("Random seed", scale=0)
                    n_controls = controls(NoiseSettings, ["num_samples", "layers", "strength", "psi"], inputs["noise"])
                with gr.Accordion("Start from a W file", open=False):
                    controls(NoiseSettings, ["w_file"], inputs["noise"])
                n_run = gr.Button("Study the noise", variant="primary")
                with gr.Row():
                    n_gallery = gr.Gallery(label="Realisations", columns=4, height="auto", scale=2,
                                           elem_id="noise-gallery")
                    n_heat = gr.Image(label="Standard deviation (bright = more variation)", type="filepath", scale=1,
                                      elem_id="noise-heatmap")
                n_compare = gr.Gallery(label="Noise on all / coarse / fine / no layers", columns=4, height="auto",
                                       elem_id="noise-compare")
                with gr.Row():
                    n_grid = gr.File(label="Download (PNG with its recipe)")
                    n_w = gr.File(label="The face's W (.npz, NVIDIA's layout)")
                n_caption = gr.Markdown()
                n_recipe = gr.JSON(label="Recipe", visible=False)
                n_note = gr.Markdown()
                results["noise"] = ([n_gallery, n_heat, n_compare, n_grid, n_caption, n_recipe, n_w], n_note)
                gr.Examples([[1, 8, "all"], [1, 8, "fine"], [1, 8, "coarse"]], [seed, *n_controls[:2]])
                n_random.click(random_seed, None, seed, api_name=False)
                n_run_event = n_run.click(studio.noise, [model_box, *app_inputs(NoiseSettings, inputs["noise"])],
                                          results["noise"][0], api_name="noise", concurrency_id=COMPUTE)

            with gr.Tab("Interpolation video", id="video"):
                gr.Markdown("A smooth walk from face to face. In **Z** the path follows a great circle of the "
                            "Gaussian input (spherical interpolation); in **W** it is a straight line between "
                            "styles, which the mapping network has made more even, so changes are smoother.")
                with gr.Row():
                    v_seeds, = controls(VideoSettings, ["seeds"], inputs["video"])
                    v_random = gr.Button("Random seeds", scale=0)
                    v_frames = controls(VideoSettings, ["frames_per_transition", "fps"], inputs["video"])
                with gr.Row():
                    v_more = controls(VideoSettings, ["space", "easing", "loop", "psi"], inputs["video"])
                with gr.Accordion("Keyframes from a W file (walked in W, before the seeds)", open=False) as v_w_box:
                    controls(VideoSettings, ["w_file"], inputs["video"])
                v_run = gr.Button("Make the video", variant="primary")
                v_player = gr.Video(label="Video (MP4, recipe in its metadata)", elem_id="video-player")
                v_recipe = gr.JSON(label="Recipe", visible=False)
                v_note = gr.Markdown()
                results["video"] = ([v_player, v_recipe], v_note)
                gr.Examples([["1, 2, 3", 24, "w"], ["10, 20, 30, 40", 12, "z"]], [v_seeds, v_frames[0], v_more[0]])
                v_random.click(lambda: ", ".join(str(random_seed()) for _ in range(3)), None, v_seeds, api_name=False)
                v_run_event = v_run.click(studio.video, [model_box, *app_inputs(VideoSettings, inputs["video"])],
                                          results["video"][0], api_name="video", concurrency_id=COMPUTE)

            with gr.Tab("Edit", id="edit"):
                gr.Markdown("Move a face along **directions** found in the model itself: **SeFa** (the directions "
                            "its style layers respond to most, from their weights) or **GANSpace** (the principal "
                            "components of W). Direction 0 is the strongest; on face models the first ones often "
                            "turn the head, change age, hair or light. Strength is in standard deviations of W "
                            "along the direction.")
                with gr.Row():
                    e_seed, = controls(EditSettings, ["seed"], inputs["edit"])
                    e_random = gr.Button("Random seed", scale=0)
                    e_method, e_components = controls(EditSettings, ["method", "components"], inputs["edit"])
                with gr.Row():
                    e_layers, e_strength, _, _, _ = controls(
                        EditSettings, ["layers", "strength", "steps", "psi", "video"], inputs["edit"])
                with gr.Accordion("Start from a W file, or use a directions file (method file)",
                                  open=False) as e_w_box:
                    with gr.Row():
                        controls(EditSettings, ["w_file", "directions_file"], inputs["edit"])
                e_run = gr.Button("Edit", variant="primary")
                e_gallery = gr.Gallery(label="From -strength to +strength", columns=7, height="auto",
                                       elem_id="edit-gallery")
                e_caption = gr.Markdown()
                with gr.Row():
                    e_strip = gr.File(label="Download the strip (PNG with its recipe)")
                    e_w = gr.File(label="Their W (.npz, NVIDIA's layout)")
                e_video = gr.Video(label="The sweep (MP4, recipe in its metadata)", elem_id="edit-video")
                e_recipe = gr.JSON(label="Recipe", visible=False)
                e_note = gr.Markdown()
                results["edit"] = ([e_gallery, e_strip, e_caption, e_recipe, e_w, e_video], e_note)
                gr.Examples([[1, "ganspace", "0", "all"], [1, "sefa", "0", "coarse"], [1, "sefa", "1", "middle"]],
                            [e_seed, e_method, e_components, e_layers])
                e_random.click(random_seed, None, e_seed, api_name=False)
                e_run_event = e_run.click(studio.edit, [model_box, *app_inputs(EditSettings, inputs["edit"])],
                                          results["edit"][0], api_name="edit", concurrency_id=COMPUTE)

            with gr.Tab("Inside", id="layers"):
                gr.Markdown("A look inside one layer of the synthesis network for one face: its **strongest "
                            "channels** (each scaled to its own range), all channels **projected to RGB** by their "
                            "three principal components, and, for StyleGAN2 models, **what each resolution's toRGB "
                            "adds** to the image: coarse blobs of colour first, fine detail last.")
                with gr.Row():
                    i_seed, = controls(LayersSettings, ["seed"], inputs["layers"])
                    i_random = gr.Button("Random seed", scale=0)
                    controls(LayersSettings, ["layer", "channels", "psi"], inputs["layers"])
                with gr.Accordion("Start from a W file", open=False):
                    controls(LayersSettings, ["w_file"], inputs["layers"])
                i_run = gr.Button("Look inside", variant="primary")
                with gr.Row():
                    i_face = gr.Image(label="The face", type="filepath", elem_id="layers-face")
                    i_grid = gr.Image(label="Strongest channels", type="filepath", elem_id="layers-grid")
                    i_rgb = gr.Image(label="Channels as RGB", type="filepath", elem_id="layers-rgb")
                i_torgb = gr.Gallery(label="What each resolution's toRGB adds", columns=6, height="auto",
                                     elem_id="layers-torgb")
                i_caption = gr.Markdown()
                i_recipe = gr.JSON(label="Recipe", visible=False)
                i_note = gr.Markdown()
                results["layers"] = ([i_face, i_grid, i_rgb, i_torgb, i_caption, i_recipe], i_note)
                i_random.click(random_seed, None, i_seed, api_name=False)
                i_run_event = i_run.click(studio.layers, [model_box, *app_inputs(LayersSettings, inputs["layers"])],
                                          results["layers"][0], api_name="layers", concurrency_id=COMPUTE)

            with gr.Tab("Your photo", id="photo"):
                gr.Markdown("Find your own face in the model: the photo's largest face is aligned as the FFHQ "
                            "faces were (eyes level, the same framing), then the styles that best reproduce it are "
                            "searched for. **W** (one w for all layers) edits best; **W+** (one per layer) looks "
                            "closest. The result is a W file, a start face for every other tab. Your photo stays "
                            "private: it is in no link, log line or recipe, and its files go with the results.")
                with gr.Row():
                    p_photo = gr.Image(label="Your photo", type="filepath", sources=["upload", "clipboard", "webcam"],
                                       elem_id="photo-input")
                    with gr.Column():
                        p_inputs = {}
                        controls(ProjectSettings, ["space", "steps", "aligned"], p_inputs)
                        p_run = gr.Button("Find it in W", variant="primary")
                with gr.Row():
                    p_aligned = gr.Image(label="Aligned crop (the target)", type="filepath", elem_id="photo-aligned")
                    p_preview = gr.Image(label="Reconstruction (updates as it goes)", type="filepath",
                                         elem_id="photo-preview")
                    p_compare = gr.Image(label="Target | reconstruction", type="filepath", elem_id="photo-compare")
                p_caption = gr.Markdown(elem_id="photo-caption")
                p_w = gr.File(label="Its W (projected_w.npz, NVIDIA's layout)", elem_id="photo-w")
                p_recipe = gr.JSON(label="Recipe", visible=False)
                with gr.Row():
                    p_to_mix = gr.Button("Mix it with seeds")
                    p_to_edit = gr.Button("Edit it")
                    p_to_video = gr.Button("Walk from it in a video")
                p_inputs["class_idx"] = class_idx
                p_run.click(studio.project, [model_box, p_photo, *app_inputs(ProjectSettings, p_inputs)],
                            [p_aligned, p_preview, p_compare, p_w, p_caption, p_recipe], api_name="project",
                            concurrency_id=COMPUTE)

        handlers = {"generate": studio.generate, "mix": studio.style_mix, "noise": studio.noise, "video": studio.video,
                    "edit": studio.edit, "layers": studio.layers}
        for tab, event in (("generate", g_run_event), ("mix", m_run_event), ("noise", n_run_event),
                           ("video", v_run_event), ("edit", e_run_event), ("layers", i_run_event)):
            event.success(share_link(TABS[tab]), [model_box, *app_inputs(TABS[tab], inputs[tab])], results[tab][1],
                          api_name=False)

        for button, tab, box in ((p_to_mix, "mix", m_w_box), (p_to_edit, "edit", e_w_box),
                                 (p_to_video, "video", v_w_box)):
            button.click(lambda w, tab=tab: (w, gr.Tabs(selected=tab), gr.Accordion(open=True)) if w else
                         (gr.skip(),) * 3, p_w, [inputs[tab]["w_file"], tabs, box], api_name=False)

        picked = [info, model_in_use, model_box, pick_note]
        model_box.input(studio.pick, [model_box, model_in_use], picked, api_name="model_info", concurrency_id=COMPUTE)
        upload.upload(studio.uploaded_model, upload, model_box, api_name=False).then(
            studio.pick, [model_box, model_in_use], picked, api_name=False, concurrency_id=COMPUTE)

        linked_tab = gr.State("generate")
        restorable = [tabs, linked_tab, model_box, class_idx] + [
            c for tab in TABS for c in app_inputs(TABS[tab], inputs[tab]) if c is not class_idx]

        def restore(request: gr.Request):
            """Settings from the page's query string (?tab=mix&rows=1,2&...); the tab's result follows."""
            q = dict(request.query_params) if request is not None else {}
            tab = q.get("tab") if q.get("tab") in TABS else "generate"
            if tab == "mix" and "preset" in q:  # links made before the layers were one field
                q["layers"] = q.get("layers", "") if q["preset"] == "custom" else q["preset"]
            updates = {tabs: gr.Tabs(selected=tab), linked_tab: tab}
            if "model" in q:
                updates[model_box] = gr.Dropdown(value=q["model"])
            for name, value in TABS[tab].values_from_query(q).items():
                updates[inputs[tab][name]] = value
            return updates

        restored = app.load(restore, None, restorable, api_name=False)
        restored = restored.then(studio.pick, [model_box, model_in_use], picked, api_name=False, concurrency_id=COMPUTE)
        for tab in TABS:  # the linked tab's result, as its sender saw it
            tab_inputs = [model_box, *app_inputs(TABS[tab], inputs[tab])]

            def show(linked, *values, tab=tab):
                if linked != tab:
                    yield tuple(gr.skip() for _ in results[tab][0])
                    return
                yield from _as_generator(handlers[tab](*values))
            show.__signature__ = inspect.Signature([inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD)
                                                    for n in ["linked", *("v%d" % i for i in range(len(tab_inputs)))]]
                                                   + [inspect.Parameter("progress", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                                                        default=gr.Progress(track_tqdm=True))])
            restored = restored.then(show, [linked_tab, *tab_inputs], results[tab][0], api_name=False,
                                     concurrency_id=COMPUTE)
            restored.then(lambda linked, *values, tab=tab: share_link(TABS[tab])(*values) if linked == tab else gr.skip(),
                          [linked_tab, *tab_inputs], results[tab][1], api_name=False)
    app.studio = studio
    return app


def _as_generator(result):
    if inspect.isgenerator(result):
        yield from result
    else:
        yield result


def queue(app):
    """One model request at a time on a CPU (torch already uses every core), two on a GPU; at most
    32 waiting, beyond which visitors are told the app is busy."""
    app.queue(default_concurrency_limit=2 if app.studio.store.device.type == "cuda" else 1, max_size=32)


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


def launch_options(args, app):
    """app.launch() arguments for the command line's settings."""
    return dict(server_name=args.host, server_port=args.port, share=args.share, css=CSS,
                allowed_paths=[str(app.studio.output_dir)], max_file_size=f"{args.max_upload_mb}mb")


def main():
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    args = parse_args()
    public = args.share or bool(os.environ.get("SPACE_ID"))
    policy = SourcePolicy(args.allow_dir, public=public, allow_typed=args.allow_typed_sources)
    app = build_app(args.model, args.device, policy, args.memory_budget_mb)
    queue(app)
    app.launch(**launch_options(args, app))


if __name__ == "__main__":
    main()
