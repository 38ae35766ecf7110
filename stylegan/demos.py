"""The tasks: faces from seeds, style-mixing grids, noise studies, interpolation videos, edits.

Each task is one function of a generator and one settings object (stylegan.settings), which it
resolves for the model and which, written with the output, is the recipe that rebuilds it:

    result = demos.generate(G, GenerateSettings(seeds="0-7", psi=0.7))
    result = demos.generate(G, "0-7", psi=0.7)  # the same: fields as arguments

Limits of a request (max_images, max_frames, max_memory) are the caller's, not settings. Bad
input raises SettingsError (also called DemoError here) with one sentence for people.
"""

import hashlib
import json
import math
import os
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from . import seed_to_z
from .outputs import (RECIPE_KEY, mp4_is_complete, read_recipe, save_png, save_pngs, save_w,  # noqa: F401 (public)
                      temporary_beside, w_file_bytes)
from .planner import estimate_memory  # noqa: F401 (public)
from . import directions as semantic
from . import photos, projection
from .settings import (MAX_FRAMES, MAX_IMAGES, MAX_SEED, EditSettings, GenerateSettings,  # noqa: F401 (public)
                       GivenFile, LayersSettings, MixSettings, ProjectSettings, NoiseSettings, SettingsError, VideoSettings, from_recipe, mixing_presets,
                       noise_layer_groups, parse_layer_range, parse_seeds, w_file_ws)

DemoError = SettingsError


@dataclass
class Result:
    images: list  # PIL images, one per seed / cell / sample
    grid: Image.Image  # everything in one picture
    recipe: dict  # the resolved settings, the model and its sha256: what rebuilds the result
    extras: dict = field(default_factory=dict)
    settings: object = None  # the resolved settings object
    ws: torch.Tensor = None  # [len(images), num_ws, w_dim]: what a W file of these faces holds


def _settings(cls, args, fields):
    """A settings object from a call: one given (maybe with fields to change), or made from the fields."""
    if args and isinstance(args[0], cls):
        if len(args) > 1:
            raise TypeError(f"a {cls.__name__} and positional fields given together")
        return args[0].replace(**fields) if fields else args[0]
    return cls(*args, **fields)


def model_device(G):
    return next(G.parameters()).device


def class_vector(G, class_idx, n):
    """One-hot class vectors [n, c_dim] for conditional models (None for unconditional ones)."""
    if G.c_dim == 0:
        return None
    c = torch.zeros([n, G.c_dim], device=model_device(G))
    c[:, class_idx] = 1
    return c


# ----------------------------------------------------------------------------- images

def to_pil(images):
    """NCHW float images (about [-1, 1]) -> PIL images, as NVIDIA's scripts convert them."""
    arr = (images.detach() * 127.5 + 128).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return [Image.fromarray(a[:, :, 0], "L") if a.shape[2] == 1 else Image.fromarray(a[:, :, :3], "RGB") for a in arr]


def make_grid(images, rows, cols, background="white"):
    """Images laid out row by row; None leaves a cell blank."""
    first = next(im for im in images if im is not None)
    w, h = first.size
    grid = Image.new(first.mode, (cols * w, rows * h), background)
    for i, im in enumerate(images):
        if im is not None:
            grid.paste(im, ((i % cols) * w, (i // cols) * h))
    return grid


def grid_shape(n):
    cols = min(n, max(4, math.ceil(math.sqrt(n))))
    return math.ceil(n / cols), cols


def colormap(values):
    """Values in [0, 1] -> RGB uint8 with a perceptually ordered dark-to-bright map (like 'inferno')."""
    stops = np.array([[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66],
                      [245, 125, 21], [250, 193, 39], [252, 255, 164]], dtype=np.float64)
    x = np.clip(values, 0, 1) * (len(stops) - 1)
    lo = np.floor(x).astype(int).clip(0, len(stops) - 2)
    t = (x - lo)[..., None]
    return (stops[lo] * (1 - t) + stops[lo + 1] * t).round().astype(np.uint8)


# ----------------------------------------------------------------------------- generation core

WS_CACHE_SIZE = 1024  # mapped seeds kept per generator (36 KB each at 1024 px): apps ask for the same seeds again
_WS_CACHE_LOCK = threading.Lock()


def seeds_to_ws(G, seeds, psi=1.0, truncation_cutoff=None, class_idx=None):
    """ws [len(seeds), num_ws, w_dim] for NVIDIA-convention seeds, cached per generator.

    Each seed is mapped on its own: batched matrix products round differently, and a face must
    not depend on which other seeds were asked for with it (or before it, through the cache).
    """
    c = class_vector(G, class_idx, 1)
    keys = [(s, psi, truncation_cutoff, class_idx) for s in seeds]
    with _WS_CACHE_LOCK:
        cache = G.__dict__.setdefault("_ws_cache", OrderedDict())
        for k in dict.fromkeys(k for k in keys if k not in cache):
            z = torch.from_numpy(seed_to_z(k[0], G.z_dim)).to(model_device(G)).unsqueeze(0)
            with torch.inference_mode():
                cache[k] = G.mapping(z, c, truncation_psi=psi, truncation_cutoff=truncation_cutoff)[0]
        while len(cache) > WS_CACHE_SIZE:
            cache.popitem(last=False)
        return torch.stack([cache[k] for k in keys])


def file_ws(G, given):
    """The ws [N, num_ws, w_dim] of a W file given in settings, checked to fit G, on G's device."""
    return torch.from_numpy(w_file_ws(G, given)).to(model_device(G))


def one_face(G, s, index=0):
    """The ws [1, num_ws, w_dim] of a task's one face: face `index` of its W file, or its seed's."""
    if s.w_file is not None:
        return file_ws(G, s.w_file)[index:index + 1]
    return seeds_to_ws(G, [s.seed], s.psi, getattr(s, "truncation_cutoff", None), s.class_idx)


def synthesize(G, ws, batch_size, pad=False, **synthesis_kwargs):
    """Synthesis in batches (planner.plan_batch sizes them); noise seeds (one per image) follow the batches.

    The last bit of a result can depend on the batch size; pad fills a short last batch up to
    batch_size (repeating its last image), so that equal inputs give bit-equal outputs.
    """
    n = len(ws)
    noise_seed = synthesis_kwargs.pop("noise_seed", None)
    if noise_seed is not None and np.ndim(noise_seed) == 0:
        noise_seed = [noise_seed] * n
    if pad and n > batch_size and n % batch_size:
        extra = batch_size - n % batch_size
        ws = torch.cat([ws, ws[-1:].expand(extra, *ws.shape[1:])])
        noise_seed = None if noise_seed is None else list(noise_seed) + [noise_seed[-1]] * extra
    out = []
    with torch.inference_mode():
        for i in range(0, len(ws), batch_size):
            seeds = None if noise_seed is None else noise_seed[i:i + batch_size]
            out.append(G.synthesis(ws[i:i + batch_size], noise_seed=seeds, **synthesis_kwargs).float().cpu())
    return torch.cat(out)[:n]


def make_transform(translate, rotate):
    """The 3x3 matrix of a rotation (degrees) and translation, as NVIDIA's tools define it."""
    s, c = math.sin(math.radians(rotate)), math.cos(math.radians(rotate))
    return np.array([[c, s, translate[0]], [-s, c, translate[1]], [0, 0, 1]], dtype=np.float64)


def input_transform(G, s):
    """The synthesis arguments that translate / rotate the input of a model that accepts a
    transform: passed per call, so concurrent requests never see each other's."""
    if (s.translate_x, s.translate_y, s.rotate) == (0, 0, 0):
        return {}
    matrix = make_transform((s.translate_x, s.translate_y), s.rotate)
    return {"transform": torch.from_numpy(np.linalg.inv(matrix)).float()}


# ----------------------------------------------------------------------------- 1. generate

def generate(G, *args, max_images=MAX_IMAGES, max_memory=None, **fields):
    """Faces from seeds: one image per seed, and a grid of them. Takes a GenerateSettings or its
    fields. max_memory: refuse requests estimated to need more bytes (planner.estimate_memory)."""
    s = _settings(GenerateSettings, args, fields).resolve(G, max_images=max_images, max_memory=max_memory)
    if s.w_file is not None:  # rendered as they are, as NVIDIA's generate.py renders a projected_w
        ws = file_ws(G, s.w_file)
    else:
        ws = seeds_to_ws(G, list(s.seeds), s.psi, s.truncation_cutoff, s.class_idx)
    images = to_pil(synthesize(G, ws, s.batch_size, noise_mode=s.noise_mode, noise_seed=s.noise_seed,
                               **input_transform(G, s)))
    return Result(images, make_grid(images, *grid_shape(len(images))), s.to_recipe(G), settings=s, ws=ws.cpu())


# ----------------------------------------------------------------------------- 2. style mixing

def style_mix(G, *args, max_images=MAX_IMAGES, max_memory=None, **fields):
    """The StyleGAN paper's Figure 3: each cell is its row's face with layers [start, stop) from its column's face.

    The grid has a header row (the column seeds' faces) and a header column (the row seeds'
    faces); the top-left cell is blank.
    """
    s = _settings(MixSettings, args, fields).resolve(G, max_images=max_images, max_memory=max_memory)
    start, stop = s.layers
    rows = list(s.row_seeds)
    unique = list(dict.fromkeys(rows + list(s.col_seeds)))
    ws = dict(zip(unique, seeds_to_ws(G, unique, s.psi, s.truncation_cutoff, s.class_idx)))
    if s.w_file is not None:  # rows are the file's faces, keyed by their place in it
        rows = [f"w{i}" for i in range(s.rows())]
        ws.update(zip(rows, file_ws(G, s.w_file)))
        unique = rows + list(dict.fromkeys(s.col_seeds))
    mixed = []
    for r in rows:
        for c in s.col_seeds:
            w = ws[r].clone()
            w[start:stop] = ws[c][start:stop]
            mixed.append(w)
    all_ws = torch.stack([ws[seed] for seed in unique] + mixed)
    images = to_pil(synthesize(G, all_ws, s.batch_size, noise_mode=s.noise_mode, noise_seed=s.noise_seed))
    plain = dict(zip(unique, images[:len(unique)]))
    cells = images[len(unique):]
    cols = len(s.col_seeds)
    layout = [None] + [plain[c] for c in s.col_seeds]
    for i, r in enumerate(rows):
        layout += [plain[r]] + cells[i * cols:(i + 1) * cols]
    grid = make_grid(layout, len(rows) + 1, cols + 1)
    return Result(cells, grid, s.to_recipe(G), {"layers": (start, stop)}, settings=s,
                  ws=torch.stack(mixed).cpu())


# ----------------------------------------------------------------------------- 3. noise

def noise_strengths(G, layers, strength):
    """Per-noise-layer strengths: strength on noise layers [start, stop), 0 elsewhere."""
    scales = np.zeros(len(G.synthesis.noise_layers))
    scales[layers[0]:layers[1]] = strength
    return scales.tolist()


def noise_study(G, *args, max_images=MAX_IMAGES, max_memory=None, **fields):
    """What the per-layer noise changes (paper Figures 4-5), for one seed.

    images: num_samples faces that differ only in their noise realisation; std: the per-pixel
    standard deviation over them (mean over colour channels), and its heat map; comparison:
    the same noise on all / coarse / fine / no layers.
    """
    s = _settings(NoiseSettings, args, fields).resolve(G, max_images=max_images, max_memory=max_memory)
    w = one_face(G, s)
    noise_seeds = [s.noise_seed + k for k in range(s.num_samples)]
    # Padded batches: without noise, the samples are bit-equal and the deviation exactly zero.
    samples = synthesize(G, w.repeat(s.num_samples, 1, 1), s.batch_size, pad=True, noise_mode="random",
                         noise_seed=noise_seeds, noise_strength=noise_strengths(G, s.layers, s.strength))
    std = samples.std(dim=0, unbiased=False).mean(dim=0).numpy()
    scale = float(std.max())
    heat = Image.fromarray(colormap(std / scale if scale > 0 else std))
    images = to_pil(samples)

    groups = noise_layer_groups(G)
    comparison = to_pil(torch.cat([
        synthesize(G, w, 1, noise_mode="random", noise_seed=s.noise_seed,
                   noise_strength=noise_strengths(G, groups[name][:2], s.strength))
        for name in ("all", "coarse", "fine", "none")]))
    heat = heat.resize(images[0].size, Image.NEAREST).convert(images[0].mode)
    grid = make_grid(images + [heat], *grid_shape(len(images) + 1))
    return Result(images, grid, s.to_recipe(G), {
        "std": std, "std_max": scale, "heatmap": heat, "comparison": comparison,
        "comparison_labels": [groups[k][2] for k in ("all", "coarse", "fine", "none")],
        "comparison_grid": make_grid(comparison, 1, 4)}, settings=s, ws=w.cpu())


# ----------------------------------------------------------------------------- 4. video

def slerp(a, b, t):
    """Spherical interpolation: for Gaussian z, the path stays where the prior's mass is."""
    a_n, b_n = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    omega = torch.acos((a_n * b_n).sum(-1, keepdim=True).clamp(-1, 1))
    so = torch.sin(omega)
    if float(so.abs().min()) < 1e-6:
        return torch.lerp(a, b, t)
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / so


def video_latents(G, seeds, frames_per_transition, space, easing, loop, psi, class_idx, first_ws=None):
    """Yields (frame index, ws [1, num_ws, w_dim]) for every frame of the walk through the keyframes:
    first_ws (e.g. a W file's faces, walked in W only), then the seeds' faces."""
    keys = seeds + [seeds[0]] if loop and first_ws is None else seeds
    if space == "w":
        key_ws = seeds_to_ws(G, keys, psi, None, class_idx)
        if first_ws is not None:
            key_ws = torch.cat([first_ws, key_ws] + ([first_ws[:1]] if loop else []))
        keys = key_ws
    else:
        z = torch.from_numpy(np.stack([seed_to_z(s, G.z_dim) for s in keys])).to(model_device(G))
        c = class_vector(G, class_idx, 1)
    transitions = len(keys) - 1
    total = transitions * frames_per_transition + (0 if loop else 1)
    for i in range(total):
        k, step = divmod(i, frames_per_transition)
        if k == transitions:  # the final keyframe of an open walk
            k, step = transitions - 1, frames_per_transition
        t = step / frames_per_transition
        if easing == "smooth":
            t = t * t * (3 - 2 * t)
        if space == "w":
            yield i, torch.lerp(key_ws[k], key_ws[k + 1], t).unsqueeze(0)
        else:
            zt = slerp(z[k], z[k + 1], torch.tensor(t, dtype=z.dtype, device=z.device)).unsqueeze(0)
            with torch.inference_mode():  # not around the yield: the caller's code would run in it
                ws = G.mapping(zt, c, truncation_psi=psi)
            yield i, ws


def interpolation_video(G, settings=None, out_path=None, *, progress=None, max_frames=MAX_FRAMES, max_memory=None,
                        **fields):
    """A walk through the faces of the keyframe seeds, written as MP4 (H.264, yuv420p) or GIF.

    Takes a VideoSettings (or its fields; seeds first). Frames are rendered in batches and
    streamed to the writer; the file appears only when it is complete. With loop, the walk
    returns to the first seed and has transitions x frames frames; without, it has one more (it
    ends on the last seed). progress(done, total) is called after every batch. In a GIF, Pillow
    merges identical consecutive frames into one longer frame (the timing is kept).
    Returns (path, recipe).
    """
    return run_steps(interpolation_video_steps(G, settings, out_path, max_frames=max_frames, max_memory=max_memory,
                                               **fields), progress)


def run_steps(steps, progress=None):
    """Run a generator of (done, total) steps to its end, calling progress(done, total) after each;
    returns what it returns. Stopped by an error, it is closed at once (a video's removes its
    unfinished file)."""
    try:
        while True:
            try:
                done, total = next(steps)
            except StopIteration as finished:
                return finished.value
            if progress is not None:
                progress(done, total)
    finally:
        steps.close()


def interpolation_video_steps(G, settings=None, out_path=None, *, max_frames=MAX_FRAMES, max_memory=None, **fields):
    """interpolation_video as a generator: yields (frames done, total) after every batch and returns
    (path, recipe). Closed early (a cancelled request), it stops and removes its unfinished file."""
    args = () if settings is None else (settings,)
    s, latents = video_walk(G, _settings(VideoSettings, args, fields), out_path, max_frames, max_memory)
    total = s.frame_count()
    return (yield from write_video_steps(G, latents, total, out_path, s.fps, s.batch_size, s.noise_mode,
                                         s.to_recipe(G, frames=total)))


def video_walk(G, settings, out_path, max_frames=MAX_FRAMES, max_memory=None):
    """A VideoSettings resolved for G (the batch size planned) after every check, the output's suffix
    too, and the latents of its frames ((frame index, ws) pairs, made as they are read). What the
    video on Ray (render.render_video) starts from as well, so that both walk the same path."""
    s = settings.resolve(G, max_frames=max_frames, max_memory=max_memory)
    _check_video_path(out_path)
    first_ws = None if s.w_file is None else file_ws(G, s.w_file)
    latents = video_latents(G, list(s.seeds), s.frames_per_transition, s.space, s.easing, s.loop, s.psi, s.class_idx,
                            first_ws)
    return s, latents


def _check_video_path(out_path):
    fmt = Path(out_path).suffix.lower()
    if fmt not in (".mp4", ".gif"):
        raise SettingsError(f"Videos are written as .mp4 or .gif, not {fmt or 'a file without a suffix'}.")


def frame_arrays(images):
    """NCHW float images -> the [H, W, 3] uint8 arrays a video writer takes (grey made RGB)."""
    return [np.asarray(frame.convert("RGB")) for frame in to_pil(images)]


def video_frames(G, latents, total, batch_size, noise_mode):
    """latents ((frame index, ws [1, num_ws, w_dim]) pairs) rendered in passes of batch_size, the
    last one shorter: yields (frames done, [that pass's frames as frame_arrays]) after every pass."""
    pending = []
    for i, ws in latents:
        pending.append(ws)
        if len(pending) == batch_size or i == total - 1:
            frames = synthesize(G, torch.cat(pending), batch_size, noise_mode=noise_mode, noise_seed=0)
            pending = []
            yield i + 1, frame_arrays(frames)


def write_video_steps(G, latents, total, out_path, fps, batch_size, noise_mode, recipe):
    """Render latents in batches (video_frames) into an MP4 or a GIF (encode_video_steps). Yields
    (frames done, total) after every batch; returns (path, recipe)."""
    frames = video_frames(G, latents, total, batch_size, noise_mode)
    return (yield from encode_video_steps(frames, total, out_path, fps, recipe))


def encode_video_steps(batches, total, out_path, fps, recipe):
    """batches ((frames done, [H, W, 3] uint8 arrays) pairs, in order) into an MP4 (H.264, yuv420p, the
    recipe in its metadata) or a GIF. Yields (frames done, total) after every batch; returns (path,
    recipe). The file appears only when complete; closed early, it removes its unfinished file."""
    import imageio.v2 as imageio

    out_path = Path(out_path)
    fmt = out_path.suffix.lower()
    tmp = temporary_beside(out_path)
    try:
        if fmt == ".mp4":
            writer = imageio.get_writer(tmp, format="FFMPEG", fps=fps, codec="libx264", pixelformat="yuv420p",
                                        quality=8, macro_block_size=1,
                                        output_params=["-metadata", "comment=" + json.dumps(recipe)])
        else:
            writer = imageio.get_writer(tmp, format="GIF", duration=1000 / fps, loop=0)
        try:
            for done, frames in batches:
                for frame in frames:
                    writer.append_data(frame)
                yield done, total
        finally:
            writer.close()  # waits for ffmpeg, so that nothing writes the file after we remove it
        if fmt == ".mp4" and not mp4_is_complete(tmp):
            raise SettingsError(f"Cannot write {out_path}: the video came out cut short (is the disk full?).")
        os.replace(tmp, out_path)
    except OSError as e:  # a full disk, a file-size limit, a folder that went away
        Path(tmp).unlink(missing_ok=True)
        raise SettingsError(f"Cannot write {out_path}: {e.strerror or e}.") from None
    except BaseException:  # also GeneratorExit, when a cancelled request closes the steps
        Path(tmp).unlink(missing_ok=True)
        raise
    return out_path, recipe


# ----------------------------------------------------------------------------- 5. edit

def find_directions(G, s):
    """The directions a (resolved) EditSettings asks for, computed from G or read from its file."""
    if s.method == "sefa":
        return semantic.sefa(G, s.layers)
    if s.method == "ganspace":
        return semantic.ganspace(G, s.samples, s.class_idx)
    return semantic.from_arrays(s.directions_file.needed("directions"), s.directions_file.name, G.w_dim)


def combined_direction(G, s, found):
    """The step [w_dim] of strength 1: the sum of the chosen unit directions, each times its weight
    and W's standard deviation along it."""
    total = np.zeros(G.w_dim)
    for index, weight in s.components:
        if index >= len(found.vectors):
            raise SettingsError(f"Direction {index} does not exist: there are {len(found.vectors)} "
                                f"(0 to {len(found.vectors) - 1}).")
        vector = found.vectors[index].astype(np.float64)
        total += weight * semantic.spread(G, vector, s.samples, s.class_idx) * vector
    return total


def _edit_start(G, s):
    """The start face's ws [num_ws, w_dim], the directions and the step [w_dim] of strength 1."""
    w0 = one_face(G, s, s.w_index)[0]
    found = find_directions(G, s)
    return w0, found, torch.from_numpy(combined_direction(G, s, found)).to(w0)


def edit(G, *args, max_images=MAX_IMAGES, max_memory=None, **fields):
    """A face moved along directions: `steps` faces from -strength to +strength (the start face in the
    middle when steps is odd), the ws of layers [start, stop) moved. Takes an EditSettings or its fields."""
    s = _settings(EditSettings, args, fields).resolve(G, max_images=max_images, max_memory=max_memory)
    start, stop = s.layers
    w0, found, step = _edit_start(G, s)
    offsets = np.linspace(-s.strength, s.strength, s.steps)
    ws = w0.repeat(s.steps, 1, 1)
    for i, offset in enumerate(offsets):
        ws[i, start:stop] += float(offset) * step
    images = to_pil(synthesize(G, ws, s.batch_size, noise_mode=s.noise_mode, noise_seed=s.noise_seed))
    explained = found.explained()
    return Result(images, make_grid(images, 1, len(images)), s.to_recipe(G), {
        "offsets": offsets.tolist(), "layers": (start, stop), "method": found.method,
        "explained": [float(explained[i]) for i, _ in s.components]}, settings=s, ws=ws.cpu())


SWEEP_FRAMES, SWEEP_FPS = 48, 24


def edit_video_steps(G, settings, out_path, *, max_memory=None):
    """The edit as a looping video: from the start face to +strength, back through it to -strength and
    home, SWEEP_FRAMES frames (a sine of the strength). Yields (done, total); returns (path, recipe)."""
    s = settings.resolve(G, max_memory=max_memory)
    _check_video_path(out_path)
    start, stop = s.layers
    w0, _, step = _edit_start(G, s)

    def latents():
        for i in range(SWEEP_FRAMES):
            ws = w0.clone().unsqueeze(0)
            ws[0, start:stop] += s.strength * math.sin(2 * math.pi * i / SWEEP_FRAMES) * step
            yield i, ws
    recipe = s.to_recipe(G, frames=SWEEP_FRAMES, fps=SWEEP_FPS, output="sweep")
    return (yield from write_video_steps(G, latents(), SWEEP_FRAMES, out_path, SWEEP_FPS, min(s.batch_size, 4),
                                         s.noise_mode, recipe))


# ----------------------------------------------------------------------------- 6. a look inside

def look_inside(G, *args, max_images=MAX_IMAGES, max_memory=None, **fields):
    """One layer's feature maps for one face (stylegan.inside): images = [the face, the strongest
    channels, the channels projected to RGB]; grid = the channels; extras: the layer, the channels
    shown and, for StyleGAN2 skip models, what each resolution's toRGB adds."""
    from . import inside  # it builds on this module's pictures
    s = _settings(LayersSettings, args, fields).resolve(G, max_images=max_images, max_memory=max_memory)
    ws = one_face(G, s)
    look = inside.look_inside(G, ws, s.layer, count=s.channels, noise_mode=s.noise_mode)
    layer = look["layer"]
    return Result([look["image"], look["grid"], look["rgb"]], look["grid"], s.to_recipe(G), {
        "layer": layer, "channels": look["channels"], "face": look["image"], "rgb": look["rgb"],
        "torgb": look["torgb"], "torgb_reason": look["torgb_reason"],
        "layers": inside.feature_layers(G)}, settings=s, ws=ws.cpu())


# ----------------------------------------------------------------------------- 7. your own photo

PREVIEW_EVERY = 25  # steps between previews of a projection


@dataclass
class Progress:
    step: int  # 0 before the optimisation starts
    total: int
    loss: float = None
    preview: Image.Image = None  # every PREVIEW_EVERY steps and at the end
    aligned: Image.Image = None  # at step 0: the crop the optimisation reproduces


@dataclass
class Projected:
    aligned: Image.Image  # the photo's face, cropped as FFHQ's (the target)
    reconstruction: Image.Image  # what the saved ws render, with constant noise
    comparison: Image.Image  # target | reconstruction
    ws: torch.Tensor  # [1, num_ws, w_dim]
    w_file: bytes  # the ws as a W file (NVIDIA's projected_w.npz layout)
    recipe: dict  # the reconstruction's: a generate recipe naming the W file by its sha256
    losses: list  # the loss terms used
    psnr: float  # dB, reconstruction against target
    notes: list  # sentences for people (several faces, a small photo)


def aligned_face(G, photo, aligned):
    """(the photo's face as the model's training faces were cropped, notes for people)."""
    image = photos.open_photo(photo)
    size = G.img_resolution
    notes = []
    if aligned:
        side = min(image.size)
        if side < size:
            notes.append(f"The photo is {side} px across, smaller than the model's {size} px: the result will be "
                         "blurry.")
        left, top = (image.width - side) // 2, (image.height - side) // 2
        return image.crop((left, top, left + side, top + side)).resize((size, size), Image.LANCZOS), notes
    from . import faces  # its weights load on first use
    found = faces.detect_faces(image)
    if not found:
        raise SettingsError("No face was found in the photo; if it is already an aligned face crop, say so "
                            "(the 'already aligned' box, or --aligned).")
    if len(found) > 1:
        notes.append(f"{len(found)} faces were found; the largest is used.")
    _, face_side = photos.ffhq_quad(found[0].landmarks)
    if face_side < size:
        notes.append(f"The face is about {face_side:.0f} px across in the photo, smaller than the model's {size} px: "
                     "the result will be blurry.")
    return photos.align_ffhq(image, found[0].landmarks, size), notes


def project_steps(G, settings, photo, *, max_memory=None):
    """Your own photo in W or W+: opened upright, its largest face aligned (unless settings.aligned),
    then projected. Yields Progress (the aligned crop first, previews on the way); returns Projected.
    Closed early (a cancel), it stops at the next step. The photo appears in no recipe."""
    s = _settings(ProjectSettings, (settings,), {}).resolve(G, max_memory=max_memory)
    target, notes = aligned_face(G, photo, s.aligned)
    yield Progress(0, s.steps, aligned=target)
    steps = projection.project_steps(G, target, s.space, s.steps, s.class_idx, s.seed, None if s.lpips else False)
    while True:
        try:
            step = next(steps)
        except StopIteration as finished:
            ws, losses = finished.value
            break
        preview = None
        if step.step % PREVIEW_EVERY == 0 or step.step == step.total:
            preview = to_pil(synthesize(G, step.ws, 1, noise_mode="const"))[0]
        yield Progress(step.step, step.total, step.loss, preview)
    reconstruction = to_pil(synthesize(G, ws, 1, noise_mode="const"))[0]
    w_file = w_file_bytes(ws)
    given = GivenFile(hashlib.sha256(w_file).hexdigest(), "projected_w.npz", {"w": ws.cpu().numpy()})
    recipe = GenerateSettings(seeds=[0], w_file=given, class_idx=s.class_idx).resolve(G).to_recipe(
        G, projected=dict(s.to_recipe(), losses=losses))
    fit = projection.psnr(reconstruction, target)
    return Projected(target, reconstruction, make_grid([target, reconstruction], 1, 2), ws.cpu(), w_file, recipe,
                     losses, fit, notes)


# ----------------------------------------------------------------------------- recipes

IMAGE_TASKS = {"generate": generate, "style_mix": style_mix, "noise_study": noise_study, "edit": edit,
               "layers": look_inside}


def run_recipe(G, recipe, output=None, max_images=MAX_IMAGES):
    """Rebuild what a recipe describes with generator G: the image saved with it (output: its 'output' key).

    output is 'grid', 'image:K' (the K-th image), or an image among the extras ('heatmap',
    'comparison_grid').
    """
    kind = recipe.get("kind")
    if kind not in IMAGE_TASKS:
        raise SettingsError(f"Recipes of kind {kind!r} cannot be rebuilt as an image.")
    result = IMAGE_TASKS[kind](G, from_recipe(recipe), max_images=max_images)
    output = output or recipe.get("output", "grid")
    if isinstance(output, str):
        m = re.fullmatch(r"image:([0-9]{1,9})", output)
        if output == "grid":
            return result.grid
        if m and int(m.group(1)) < len(result.images):
            return result.images[int(m.group(1))]
        if isinstance(result.extras.get(output), Image.Image):
            return result.extras[output]
    raise SettingsError(f"The recipe asks for an output {output!r} that a {kind} does not make.")
