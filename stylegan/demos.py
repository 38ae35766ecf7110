"""The four demos: faces from seeds, style-mixing grids, noise studies, interpolation videos.

Each takes a loaded generator and plain values and returns PIL images / numpy arrays / a file
path plus a recipe: the dict that, saved with the output, regenerates it exactly. Bad input
raises DemoError with one sentence for people.
"""

import json
import math
import numbers
import os
import re
import secrets
import struct
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, PngImagePlugin

from . import seed_to_z

MAX_SEED = 2 ** 32 - 1
MAX_IMAGES = 64  # per request: seeds in a grid, cells in a mixing grid, noise samples
MAX_FRAMES = 1800  # per video: one minute at 30 fps
RECIPE_KEY = "stylegan-recipe"


class DemoError(ValueError):
    """Bad input to a demo; the message is one sentence meant for people."""


@dataclass
class Result:
    images: list  # PIL images, one per seed / cell / sample
    grid: Image.Image  # everything in one picture
    recipe: dict
    extras: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------- parsing and checks

def parse_seeds(seeds, max_count=MAX_IMAGES):
    """'0-7, 42' or [0, 1] -> a list of ints in [0, 2**32 - 1], at most max_count of them."""
    if isinstance(seeds, (int, np.integer)):
        seeds = [seeds]
    if isinstance(seeds, str):
        items = [s.strip() for s in seeds.replace(";", ",").split(",")]
        if not any(items):
            raise DemoError("No seeds given: write them like '0-7, 42'.")
        out = []
        for item in items:
            if not item:
                continue
            m = re.fullmatch(r"([0-9]+)\s*(?:-|\.\.)\s*([0-9]+)", item)
            if m:
                lo, hi = _seed_int(m.group(1)), _seed_int(m.group(2))
                if lo > hi:
                    raise DemoError(f"The seed range {item!r} runs backwards; write it as {hi}-{lo}.")
                if hi - lo + 1 > max_count:
                    raise DemoError(f"The seed range {item!r} has {hi - lo + 1} seeds; at most {max_count} at once.")
                out.extend(range(lo, hi + 1))
            elif re.fullmatch(r"[0-9]+", item):
                out.append(_seed_int(item))
            else:
                raise DemoError(f"{item!r} is not a seed: seeds are whole numbers from 0 to {MAX_SEED}, like '0-7, 42'.")
        seeds = out
    elif isinstance(seeds, (list, tuple, np.ndarray)):
        seeds = list(seeds)
        for s in seeds:
            if isinstance(s, bool) or not isinstance(s, (int, np.integer)) and not (isinstance(s, float) and s.is_integer()):
                raise DemoError(f"{s!r} is not a seed: seeds are whole numbers from 0 to {MAX_SEED}.")
        seeds = [int(s) for s in seeds]
    else:
        raise DemoError(f"{seeds!r} is not a list of seeds: write them like '0-7, 42'.")
    if not seeds:
        raise DemoError("No seeds given: write them like '0-7, 42'.")
    for s in seeds:
        if not 0 <= s <= MAX_SEED:
            raise DemoError(f"Seed {s} is out of range: seeds go from 0 to {MAX_SEED}.")
    if len(seeds) > max_count:
        raise DemoError(f"{len(seeds)} seeds asked for; at most {max_count} at once.")
    return seeds


def _seed_int(digits):
    """int() of a seed's digits; very long numbers are refused before int() refuses them less kindly."""
    if len(digits.lstrip("0")) > 20:
        raise DemoError(f"Seed {digits[:20]}... is out of range: seeds go from 0 to {MAX_SEED}.")
    return int(digits)


def parse_layer_range(text, num_ws):
    """'4-8' or '4:8' or (4, 8) -> a half-open range (start, stop) within [0, num_ws]."""
    if isinstance(text, str):
        m = re.fullmatch(r"\s*([0-9]{1,9})\s*(?:-|:|\.\.)\s*([0-9]{1,9})\s*", text)
        if not m:
            raise DemoError(f"{text!r} is not a layer range: write it as start-stop, like 0-4 (stop not included).")
        start, stop = int(m.group(1)), int(m.group(2))
    else:
        try:
            start, stop = (int(v) for v in text)
        except (TypeError, ValueError, OverflowError):  # OverflowError: int(inf)
            raise DemoError(f"{text!r} is not a layer range: give (start, stop).") from None
    if not 0 <= start <= stop <= num_ws:
        raise DemoError(f"Layer range {start}-{stop} is outside this model's layers 0-{num_ws} (stop not included).")
    return start, stop


def is_number(x):
    """A finite real number (numpy scalars too), not a bool."""
    return isinstance(x, numbers.Real) and not isinstance(x, (bool, np.bool_)) and math.isfinite(x)


def is_whole(x):
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def check_psi(psi):
    if not is_number(psi) or not -2 <= psi <= 2:
        raise DemoError(f"Truncation psi {psi!r} is outside [-2, 2]; 0.7 is a good start.")
    return float(psi)


def check_cutoff(G, cutoff):
    if cutoff is None:
        return None
    if not is_whole(cutoff) or not 0 <= cutoff <= G.num_ws:
        raise DemoError(f"Truncation cutoff {cutoff!r} must be a whole number from 0 to {G.num_ws}.")
    return int(cutoff)


def check_noise_mode(mode):
    if mode not in ("const", "random", "none"):
        raise DemoError(f"Noise mode {mode!r} is not one of const, random, none.")
    return mode


def check_noise_seed(noise_seed):
    if not is_whole(noise_seed) or not 0 <= noise_seed <= MAX_SEED:
        raise DemoError(f"Noise seed {noise_seed!r} must be a whole number from 0 to {MAX_SEED}.")
    return int(noise_seed)


def check_batch_size(batch_size):
    if not is_whole(batch_size) or not 1 <= batch_size <= MAX_IMAGES:
        raise DemoError(f"Batch size {batch_size!r} must be a whole number from 1 to {MAX_IMAGES}.")
    return int(batch_size)


def largest_feature_map(G):
    """Elements of the largest feature map one image passes through, from the architecture."""
    sizes = [G.img_channels * G.img_resolution ** 2]
    for m in G.synthesis.modules():
        weight = getattr(m, "weight", None)
        if not isinstance(weight, torch.Tensor) or weight.ndim != 4:
            continue
        if hasattr(m, "up_factor"):  # StyleGAN3: the activation runs on an up-sampled signal
            side = (int(max(m.in_size)) + m.conv_kernel - 1) * m.up_factor
            sizes.append(weight.shape[0] * side ** 2)
        elif hasattr(m, "resolution"):
            sizes.append(weight.shape[0] * (m.resolution + 2) ** 2)  # + the transposed convolution's overhang
    return max(sizes)


def estimate_memory(G, num_images, batch_size):
    """Bytes a request needs at its peak, roughly: its finished images (float and 8-bit) and
    a few live copies of the largest feature map for each image of one batch."""
    finished = num_images * G.img_channels * G.img_resolution ** 2 * 5
    return finished + min(batch_size, num_images) * largest_feature_map(G) * 4 * 5


def check_memory(G, num_images, batch_size, max_memory):
    if max_memory is None:
        return
    need = estimate_memory(G, num_images, batch_size)
    if need > max_memory:
        raise DemoError(f"This request would need about {need / 2 ** 30:.1f} GB of memory, more than the "
                        f"{max_memory / 2 ** 30:.1f} GB allowed: ask for fewer images, a smaller batch or a "
                        "smaller model.")


def check_transform(translate, rotate):
    """(x, y) and degrees as plain floats."""
    try:
        values = [float(v) for v in translate] + [float(rotate)]
    except (TypeError, ValueError):
        values = []
    if len(values) != 3 or not all(math.isfinite(v) for v in values):
        raise DemoError("Translate takes two finite numbers (x, y) and rotate one (degrees).")
    return values[:2], values[2]


def check_class(G, class_idx):
    """The class index as a plain int (None for unconditional models); see class_vector."""
    class_vector(G, class_idx, 1)
    return None if class_idx is None else int(class_idx)


def class_vector(G, class_idx, n):
    """One-hot class vectors [n, c_dim] for conditional models (None for unconditional ones)."""
    if G.c_dim == 0:
        if class_idx is not None:
            raise DemoError("This model is unconditional: leave the class empty.")
        return None
    if class_idx is None:
        raise DemoError(f"This model is conditional: choose a class from 0 to {G.c_dim - 1}.")
    if not is_whole(class_idx) or not 0 <= class_idx < G.c_dim:
        raise DemoError(f"Class {class_idx!r} does not exist: this model has classes 0 to {G.c_dim - 1}.")
    c = torch.zeros([n, G.c_dim], device=model_device(G))
    c[:, class_idx] = 1
    return c


def model_device(G):
    return next(G.parameters()).device


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

def model_recipe(G):
    return {"model": getattr(G, "source", None), "model_sha256": getattr(G, "sha256", None)}


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


def synthesize(G, ws, batch_size=4, pad=False, **synthesis_kwargs):
    """Synthesis in batches, so memory stays bounded; noise seeds (one per image) follow the batches.

    The last bit of a result can depend on the batch size; pad fills the last batch up to
    batch_size (repeating its last image), so that equal inputs give bit-equal outputs.
    """
    n = len(ws)
    noise_seed = synthesis_kwargs.pop("noise_seed", None)
    if noise_seed is not None and np.ndim(noise_seed) == 0:
        noise_seed = [noise_seed] * n
    if pad and n % batch_size:
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


def input_transform(G, translate=(0, 0), rotate=0):
    """The synthesis arguments that translate / rotate a StyleGAN3 image: passed per call, so
    concurrent requests never see each other's transform."""
    if tuple(translate) == (0, 0) and rotate == 0:
        return {}
    if G.family != "stylegan3":
        raise DemoError("Translate and rotate need a StyleGAN3 model; this one is " + G.family + ".")
    return {"transform": torch.from_numpy(np.linalg.inv(make_transform(translate, rotate))).float()}


# ----------------------------------------------------------------------------- 1. generate

def generate(G, seeds, psi=1.0, truncation_cutoff=None, noise_mode="const", noise_seed=0, class_idx=None,
             translate=(0.0, 0.0), rotate=0.0, batch_size=4, max_images=MAX_IMAGES, max_memory=None):
    """Faces from seeds: one image per seed, and a grid of them. max_memory: refuse requests
    estimated to need more bytes (estimate_memory)."""
    seeds = parse_seeds(seeds, max_images)
    psi = check_psi(psi)
    truncation_cutoff = check_cutoff(G, truncation_cutoff)
    noise_mode = check_noise_mode(noise_mode)
    noise_seed = check_noise_seed(noise_seed)
    class_idx = check_class(G, class_idx)
    batch_size = check_batch_size(batch_size)
    translate, rotate = check_transform(translate, rotate)
    check_memory(G, len(seeds), batch_size, max_memory)
    ws = seeds_to_ws(G, seeds, psi, truncation_cutoff, class_idx)
    transform = input_transform(G, translate, rotate)
    images = to_pil(synthesize(G, ws, batch_size, noise_mode=noise_mode, noise_seed=noise_seed, **transform))
    rows, cols = grid_shape(len(images))
    recipe = dict(kind="generate", **model_recipe(G), seeds=seeds, psi=psi, truncation_cutoff=truncation_cutoff,
                  noise_mode=noise_mode, noise_seed=noise_seed, class_idx=class_idx, translate=translate,
                  rotate=rotate, batch_size=batch_size)
    return Result(images, make_grid(images, rows, cols), recipe)


# ----------------------------------------------------------------------------- 2. style mixing

def mixing_presets(G):
    """{name: (start, stop, label)} for the style-mixing grid.

    StyleGAN2: by resolution as in the StyleGAN paper (coarse 4-8 px, middle 16-32, fine 64 up).
    StyleGAN3's layers are not tied to resolutions, so its presets are thirds of its layers.
    """
    n = G.num_ws
    if G.family == "stylegan3":
        a, b = round(n / 3), round(2 * n / 3)
        note = "(StyleGAN3: thirds of its layers, not tied to resolutions)"
        return {"coarse": (0, a, f"layers 0-{a - 1} {note}"), "middle": (a, b, f"layers {a}-{b - 1} {note}"),
                "fine": (b, n, f"layers {b}-{n - 1} {note}")}
    res = G.synthesis.ws_resolutions
    presets = {}
    for name, lo, hi in (("coarse", 4, 8), ("middle", 16, 32), ("fine", 64, 1 << 30)):
        idx = [i for i, r in enumerate(res) if lo <= r <= hi]
        if idx:
            top = min(hi, G.img_resolution)
            presets[name] = (idx[0], idx[-1] + 1, f"layers {idx[0]}-{idx[-1]} ({lo}²-{top}²)")
    return presets


def style_mix(G, row_seeds, col_seeds, layers="coarse", psi=1.0, truncation_cutoff=None, noise_mode="const",
              noise_seed=0, class_idx=None, batch_size=4, max_images=MAX_IMAGES, max_memory=None):
    """The StyleGAN paper's Figure 3: each cell is its row's face with layers [start, stop) from its column's face.

    The grid has a header row (the column seeds' faces) and a header column (the row seeds'
    faces); the top-left cell is blank.
    """
    row_seeds, col_seeds = parse_seeds(row_seeds, max_images), parse_seeds(col_seeds, max_images)
    if len(row_seeds) * len(col_seeds) > max_images:
        raise DemoError(f"{len(row_seeds)} x {len(col_seeds)} cells asked for; at most {max_images} at once.")
    if layers in ("coarse", "middle", "fine"):
        presets = mixing_presets(G)
        if layers not in presets:
            raise DemoError(f"This model has no {layers!r} layers to mix; choose from {', '.join(presets)} or a range.")
        start, stop = presets[layers][:2]
    else:
        start, stop = parse_layer_range(layers, G.num_ws)
    psi = check_psi(psi)
    truncation_cutoff = check_cutoff(G, truncation_cutoff)
    noise_mode = check_noise_mode(noise_mode)
    noise_seed = check_noise_seed(noise_seed)
    class_idx = check_class(G, class_idx)
    batch_size = check_batch_size(batch_size)
    unique = list(dict.fromkeys(row_seeds + col_seeds))
    check_memory(G, len(unique) + len(row_seeds) * len(col_seeds), batch_size, max_memory)
    ws = dict(zip(unique, seeds_to_ws(G, unique, psi, truncation_cutoff, class_idx)))
    mixed = []
    for r in row_seeds:
        for c in col_seeds:
            w = ws[r].clone()
            w[start:stop] = ws[c][start:stop]
            mixed.append(w)
    all_ws = torch.stack([ws[s] for s in unique] + mixed)
    images = to_pil(synthesize(G, all_ws, batch_size, noise_mode=noise_mode, noise_seed=noise_seed))
    plain = dict(zip(unique, images[:len(unique)]))
    cells = images[len(unique):]
    layout = [None] + [plain[c] for c in col_seeds]
    for i, r in enumerate(row_seeds):
        layout += [plain[r]] + cells[i * len(col_seeds):(i + 1) * len(col_seeds)]
    grid = make_grid(layout, len(row_seeds) + 1, len(col_seeds) + 1)
    recipe = dict(kind="style_mix", **model_recipe(G), row_seeds=row_seeds, col_seeds=col_seeds,
                  layers=[start, stop], psi=psi, truncation_cutoff=truncation_cutoff, noise_mode=noise_mode,
                  noise_seed=noise_seed, class_idx=class_idx, batch_size=batch_size)
    return Result(cells, grid, recipe, {"layers": (start, stop)})


# ----------------------------------------------------------------------------- 3. noise

def noise_layer_groups(G):
    """{name: (start, stop, label)} over the noise layers, as in the paper's Figure 5.

    Coarse and fine split at 32 px for models of 128 px and more (the paper's 4-32 / 64-1024),
    at a quarter of the resolution for smaller ones.
    """
    res = [layer.resolution for layer in G.synthesis.noise_layers]
    n = len(res)
    split = max(4, min(32, G.img_resolution // 4))
    k = sum(1 for r in res if r <= split)
    return {"all": (0, n, f"all {n} noise layers"), "coarse": (0, k, f"layers 0-{k - 1} (4²-{split}²)"),
            "fine": (k, n, f"layers {k}-{n - 1} ({2 * split}²-{G.img_resolution}²)"), "none": (0, 0, "no noise")}


def noise_strengths(G, layers, strength):
    n = len(G.synthesis.noise_layers)
    if layers in ("all", "coarse", "fine", "none"):
        groups = noise_layer_groups(G)
        if layers not in groups:
            raise DemoError(f"Noise layers {layers!r} unknown; choose from {', '.join(groups)} or a range.")
        start, stop = groups[layers][:2]
    else:
        start, stop = parse_layer_range(layers, n)
    scales = np.zeros(n)
    scales[start:stop] = strength
    return (start, stop), scales.tolist()


def noise_study(G, seed, num_samples=8, layers="all", strength=1.0, psi=1.0, noise_seed=0, class_idx=None,
                batch_size=4, max_images=MAX_IMAGES, max_memory=None):
    """What the per-layer noise changes (paper Figures 4-5), for one seed.

    images: num_samples faces that differ only in their noise realisation; std: the per-pixel
    standard deviation over them (mean over colour channels), and its heat map; comparison:
    the same noise on all / coarse / fine / no layers.
    """
    if not G.synthesis.has_noise:
        raise DemoError(f"This model ({G.family}) has no noise inputs, so there is nothing to study; "
                        "use a StyleGAN2 model.")
    seed = parse_seeds(seed if isinstance(seed, str) else [seed], 1)[0]
    if not is_whole(num_samples) or not 2 <= num_samples <= max_images:
        raise DemoError(f"The number of noise samples must be from 2 to {max_images}.")
    if not is_number(strength) or not 0 <= strength <= 10:
        raise DemoError(f"Noise strength {strength!r} must be from 0 to 10.")
    num_samples, strength = int(num_samples), float(strength)
    noise_seed = check_noise_seed(noise_seed)
    psi = check_psi(psi)
    class_idx = check_class(G, class_idx)
    batch_size = check_batch_size(batch_size)
    (start, stop), scales = noise_strengths(G, layers, strength)
    check_memory(G, num_samples + 4, batch_size, max_memory)
    w = seeds_to_ws(G, [seed], psi, None, class_idx)
    noise_seeds = [noise_seed + k for k in range(num_samples)]
    # Padded batches: without noise, the samples are bit-equal and the deviation exactly zero.
    samples = synthesize(G, w.repeat(num_samples, 1, 1), batch_size, pad=True, noise_mode="random",
                         noise_seed=noise_seeds, noise_strength=scales)
    std = samples.std(dim=0, unbiased=False).mean(dim=0).numpy()
    scale = float(std.max())
    heat = Image.fromarray(colormap(std / scale if scale > 0 else std))
    images = to_pil(samples)

    comparison = []
    groups = noise_layer_groups(G)
    for name in ("all", "coarse", "fine", "none"):
        _, group_scales = noise_strengths(G, name, strength)
        comparison.append(synthesize(G, w, 1, noise_mode="random", noise_seed=noise_seed, noise_strength=group_scales))
    comparison = to_pil(torch.cat(comparison))
    heat = heat.resize(images[0].size, Image.NEAREST).convert(images[0].mode)
    grid = make_grid(images + [heat], *grid_shape(len(images) + 1))
    recipe = dict(kind="noise_study", **model_recipe(G), seed=seed, num_samples=num_samples, layers=[start, stop],
                  strength=strength, psi=psi, noise_seed=noise_seed, class_idx=class_idx, batch_size=batch_size)
    return Result(images, grid, recipe, {
        "std": std, "std_max": scale, "heatmap": heat, "comparison": comparison,
        "comparison_labels": [groups[k][2] for k in ("all", "coarse", "fine", "none")],
        "comparison_grid": make_grid(comparison, 1, 4)})


# ----------------------------------------------------------------------------- 4. video

def slerp(a, b, t):
    """Spherical interpolation: for Gaussian z, the path stays where the prior's mass is."""
    a_n, b_n = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    omega = torch.acos((a_n * b_n).sum(-1, keepdim=True).clamp(-1, 1))
    so = torch.sin(omega)
    if float(so.abs().min()) < 1e-6:
        return torch.lerp(a, b, t)
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / so


def video_latents(G, seeds, frames_per_transition, space, easing, loop, psi, class_idx):
    """Yields (frame index, ws [1, num_ws, w_dim]) for every frame of the walk through the keyframes."""
    keys = seeds + [seeds[0]] if loop else seeds
    transitions = len(keys) - 1
    total = transitions * frames_per_transition + (0 if loop else 1)
    z = torch.from_numpy(np.stack([seed_to_z(s, G.z_dim) for s in keys])).to(model_device(G))
    c = class_vector(G, class_idx, 1)
    key_ws = seeds_to_ws(G, keys, psi, None, class_idx) if space == "w" else None
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


def video_frame_count(num_seeds, frames_per_transition, loop):
    transitions = num_seeds if loop else num_seeds - 1
    return transitions * frames_per_transition + (0 if loop else 1)


def interpolation_video(G, seeds, out_path, frames_per_transition=30, fps=30, space="z", easing="smooth", loop=True,
                        psi=0.7, noise_mode="const", class_idx=None, batch_size=4, max_frames=MAX_FRAMES,
                        progress=None, max_memory=None):
    """A walk through the faces of the keyframe seeds, written as MP4 (H.264, yuv420p) or GIF.

    Frames are rendered in batches and streamed to the writer; the file appears only when it
    is complete. With loop, the walk returns to the first seed and has transitions x frames
    frames; without, it has one more (it ends on the last seed). progress(done, total) is
    called after every batch. In a GIF, Pillow merges identical consecutive frames into one
    longer frame (the timing is kept). Returns (path, recipe).
    """
    steps = interpolation_video_steps(G, seeds, out_path, frames_per_transition, fps, space, easing, loop, psi,
                                      noise_mode, class_idx, batch_size, max_frames, max_memory)
    while True:
        try:
            done, total = next(steps)
        except StopIteration as finished:
            return finished.value
        if progress is not None:
            progress(done, total)


def interpolation_video_steps(G, seeds, out_path, frames_per_transition=30, fps=30, space="z", easing="smooth",
                              loop=True, psi=0.7, noise_mode="const", class_idx=None, batch_size=4,
                              max_frames=MAX_FRAMES, max_memory=None):
    """interpolation_video as a generator: yields (frames done, total) after every batch and returns
    (path, recipe). Closed early (a cancelled request), it stops and removes its unfinished file."""
    import imageio.v2 as imageio

    seeds = parse_seeds(seeds, max_frames)
    if len(seeds) < 2:
        raise DemoError("A video needs at least two keyframe seeds.")
    if not is_whole(frames_per_transition) or frames_per_transition < 1:
        raise DemoError("Frames per transition must be a whole number of at least 1.")
    frames_per_transition = int(frames_per_transition)
    if not is_number(fps) or not 1 <= fps <= 120:
        raise DemoError(f"Frames per second {fps!r} must be from 1 to 120.")
    if space not in ("z", "w"):
        raise DemoError(f"Interpolation space {space!r} is not z or w.")
    if easing not in ("linear", "smooth"):
        raise DemoError(f"Easing {easing!r} is not linear or smooth.")
    psi = check_psi(psi)
    noise_mode = check_noise_mode(noise_mode)
    class_idx = check_class(G, class_idx)
    batch_size = check_batch_size(batch_size)
    total = video_frame_count(len(seeds), frames_per_transition, loop)
    if total > max_frames:
        raise DemoError(f"That video would have {total} frames; at most {max_frames}: use fewer seeds or frames.")
    check_memory(G, batch_size, batch_size, max_memory)  # frames are streamed to the file, a batch at a time
    out_path = Path(out_path)
    fmt = out_path.suffix.lower()
    if fmt not in (".mp4", ".gif"):
        raise DemoError(f"Videos are written as .mp4 or .gif, not {fmt or 'a file without a suffix'}.")
    recipe = dict(kind="video", **model_recipe(G), seeds=seeds, frames_per_transition=frames_per_transition,
                  fps=float(fps), space=space, easing=easing, loop=bool(loop), psi=psi, noise_mode=noise_mode,
                  class_idx=class_idx, frames=total)
    tmp = _temporary_beside(out_path)
    try:
        if fmt == ".mp4":
            writer = imageio.get_writer(tmp, format="FFMPEG", fps=fps, codec="libx264", pixelformat="yuv420p",
                                        quality=8, macro_block_size=1,
                                        output_params=["-metadata", "comment=" + json.dumps(recipe)])
        else:
            writer = imageio.get_writer(tmp, format="GIF", duration=1000 / fps, loop=0)
        try:
            pending = []
            for i, ws in video_latents(G, seeds, frames_per_transition, space, easing, loop, psi, class_idx):
                pending.append(ws)
                if len(pending) == batch_size or i == total - 1:
                    frames = synthesize(G, torch.cat(pending), batch_size, noise_mode=noise_mode, noise_seed=0)
                    for frame in to_pil(frames):
                        writer.append_data(np.asarray(frame.convert("RGB")))
                    pending = []
                    yield i + 1, total
        finally:
            writer.close()  # waits for ffmpeg, so that nothing writes the file after we remove it
        if fmt == ".mp4" and not mp4_is_complete(tmp):
            raise DemoError(f"Cannot write {out_path}: the video came out cut short (is the disk full?).")
        os.replace(tmp, out_path)
    except OSError as e:  # a full disk, a file-size limit, a folder that went away
        Path(tmp).unlink(missing_ok=True)
        raise DemoError(f"Cannot write {out_path}: {e.strerror or e}.") from None
    except BaseException:  # also GeneratorExit, when a cancelled request closes the steps
        Path(tmp).unlink(missing_ok=True)
        raise
    return out_path, recipe


def mp4_is_complete(path):
    """Whether the MP4's top-level boxes run exactly to the end of the file and include its index
    (moov). imageio does not report ffmpeg's exit status, so a write that failed half-way (a
    full disk) would otherwise pass for a video."""
    size, pos, kinds = os.path.getsize(path), 0, set()
    with open(path, "rb") as f:
        while pos < size:
            f.seek(pos)
            header = f.read(16)
            if len(header) < 8:
                return False
            box_size, kind = struct.unpack(">I4s", header[:8])
            if box_size == 1 and len(header) == 16:
                box_size = struct.unpack(">Q", header[8:])[0]
            elif box_size == 0:
                box_size = size - pos
            if box_size < 8:
                return False
            kinds.add(kind)
            pos += box_size
    return pos == size and {b"ftyp", b"moov", b"mdat"} <= kinds


def _temporary_beside(path):
    """A new temporary file name in path's folder (so the final rename is atomic)."""
    path = Path(path)
    if not path.parent.exists():
        raise DemoError(f"Cannot write {path}: the folder {path.parent} does not exist.")
    if not path.parent.is_dir():
        raise DemoError(f"Cannot write {path}: {path.parent} is a file, not a folder.")
    tmp = path.parent / f".{path.stem}.{secrets.token_hex(8)}{path.suffix}"
    try:
        # Not tempfile.mkstemp: its files are private (0600), and the rename would keep that.
        # Mode 0666 lets the umask decide, as for any file the user writes.
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except OSError as e:
        raise DemoError(f"Cannot write {path}: {e.strerror}.") from None
    return str(tmp)


# ----------------------------------------------------------------------------- recipes

def save_png(image, path, recipe=None):
    """Write image as PNG with its recipe (if any) in a text chunk; the file appears only when complete."""
    info = PngImagePlugin.PngInfo()
    if recipe is not None:
        info.add_text(RECIPE_KEY, json.dumps(recipe))
    info.add_text("Software", "stylegan-demo")
    tmp = _temporary_beside(path)
    try:
        image.save(tmp, format="PNG", pnginfo=info)
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise DemoError(f"Cannot write {path}: {e.strerror or e}.") from None
    return Path(path)


def read_recipe(path):
    try:
        with Image.open(path) as im:
            text = im.text.get(RECIPE_KEY) if hasattr(im, "text") else None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise DemoError(f"{path} is not a readable PNG.") from None
    if text is None:
        raise DemoError(f"{path} carries no stylegan recipe.")
    try:
        recipe = json.loads(text)
    except ValueError:
        recipe = None
    kind = recipe.get("kind") if isinstance(recipe, dict) else None
    if not isinstance(kind, str) or kind not in RECIPE_FUNCTIONS:
        raise DemoError(f"The recipe in {path} is damaged.")
    return recipe


def run_recipe(G, recipe, output=None, max_images=MAX_IMAGES):
    """Rebuild what a recipe describes with generator G: the image saved with it (output: its 'output' key).

    output is 'grid', 'image:K' (the K-th image), or an image among the extras ('heatmap',
    'comparison_grid').
    """
    kind = recipe.get("kind")
    if not isinstance(kind, str) or kind not in RECIPE_FUNCTIONS:
        raise DemoError(f"Recipes of kind {kind!r} cannot be rebuilt as an image.")
    func, params = RECIPE_FUNCTIONS[kind]
    kwargs = {k: recipe[k] for k in params if k in recipe}
    try:
        result = func(G, **kwargs, max_images=max_images)
    except TypeError:
        raise DemoError(f"The {kind} recipe has missing or wrong fields.") from None
    output = output or recipe.get("output", "grid")
    if isinstance(output, str):
        m = re.fullmatch(r"image:([0-9]{1,9})", output)
        if output == "grid":
            return result.grid
        if m and int(m.group(1)) < len(result.images):
            return result.images[int(m.group(1))]
        if isinstance(result.extras.get(output), Image.Image):
            return result.extras[output]
    raise DemoError(f"The recipe asks for an output {output!r} that a {kind} does not make.")


RECIPE_FUNCTIONS = {
    "generate": (generate, ["seeds", "psi", "truncation_cutoff", "noise_mode", "noise_seed", "class_idx", "translate",
                            "rotate", "batch_size"]),
    "style_mix": (style_mix, ["row_seeds", "col_seeds", "layers", "psi", "truncation_cutoff", "noise_mode",
                              "noise_seed", "class_idx", "batch_size"]),
    "noise_study": (noise_study, ["seed", "num_samples", "layers", "strength", "psi", "noise_seed", "class_idx",
                                  "batch_size"]),
}
