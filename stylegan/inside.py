"""A look inside the layers: what one face's feature maps hold at a chosen synthesis layer.

    info = inside.look_inside(G, demos.seeds_to_ws(G, [42]), "b16.conv0")

feature_layers(G) lists the layers whose output is a feature map (any family), feature_maps
captures one layer's output for a face, channel_grid and rgb_projection turn it into pictures,
and torgb_contributions splits a StyleGAN2 skip model's image into what each resolution's
ToRGB adds. Pure torch / numpy / PIL; look_inside bundles it all for a CLI or an app.
"""

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from . import stylegan1, stylegan2, stylegan3
from .demos import colormap, grid_shape, make_grid, to_pil
from .layers import upsample2d
from .settings import SettingsError

MIN_SIDE = 128  # look_inside enlarges smaller pictures to at least this many pixels a side
MAX_CELL = 256  # ...and shrinks channel-grid cells larger than this, so that a 1024 px layer's grid stays small


class NotAvailable(SettingsError):
    """What was asked does not exist for this model; the message is one sentence for people."""


@dataclass(frozen=True)
class LayerInfo:
    index: int  # position in feature_layers(G), in forward order
    name: str  # the module's path under G.synthesis, e.g. "b16.conv0", "L3_52_1024", "layers.5"
    resolution: int  # height (= width) of the layer's output
    channels: int
    module: torch.nn.Module = field(compare=False, repr=False)


def feature_layers(G):
    """Every synthesis layer whose output is a feature map, in forward order (ToRGB layers left out).

    StyleGAN2: each block's convolutions ("b4.conv1", "b8.conv0", "b8.conv1", ...); in resnet
    models a block adds its skip path after conv1, so conv1's output is not the block's output.
    StyleGAN3: the Fourier-feature input ("input"), then "L0_..." up to the last layer before the
    ToRGB. Their sizes include the margin that the last two layers crop, so the resolution falls
    at the end (52 -> 32 in a 32 px model). StyleGAN (2019): "layers.0" ... "layers.{num_ws-1}".
    """
    s = G.synthesis
    found = []  # (name, module, resolution, channels)
    if isinstance(s, stylegan2.SynthesisNetwork):
        for res, block in zip(s.block_resolutions, s.blocks):
            for layer in block.conv_layers():
                name = f"b{res}.{'conv1' if layer is block.conv1 else 'conv0'}"
                found.append((name, layer, layer.resolution, layer.weight.shape[0]))
    elif isinstance(s, stylegan3.SynthesisNetwork):
        found.append(("input", s.input, int(s.input.size[1]), s.input.channels))
        for name in s.layer_names:
            layer = getattr(s, name)
            if not layer.is_torgb:
                found.append((name, layer, int(layer.out_size[1]), layer.weight.shape[0]))
    elif isinstance(s, stylegan1.SynthesisNetwork):
        for i, layer in enumerate(s.layers):
            # The constant's layer has no weight; its bias has one entry per output channel too.
            found.append((f"layers.{i}", layer, layer.resolution, layer.bias.shape[0]))
    else:
        raise NotAvailable(f"Cannot look inside a {type(s).__name__}: only StyleGAN, StyleGAN2 and StyleGAN3 "
                           "synthesis networks are known.")
    return [LayerInfo(i, name, int(res), int(ch), module) for i, (name, module, res, ch) in enumerate(found)]


def find_layer(G, layer):
    """The LayerInfo of a layer given by its index, its name or its LayerInfo."""
    layers = feature_layers(G)
    if isinstance(layer, LayerInfo):
        layer = layer.name
    if isinstance(layer, (int, np.integer)) and not isinstance(layer, bool):
        if 0 <= layer < len(layers):
            return layers[layer]
        raise NotAvailable(f"Layer {layer} does not exist: this model has feature layers 0 to {len(layers) - 1}.")
    for info in layers:
        if info.name == layer:
            return info
    raise NotAvailable(f"This model has no layer named {layer!r}; its layers are "
                       f"{', '.join(info.name for info in layers)}.")


def _one_face(G, ws):
    ws = torch.as_tensor(ws)
    if ws.ndim == 2:
        ws = ws.unsqueeze(0)
    if ws.ndim != 3 or ws.shape[0] != 1:
        raise ValueError(f"ws must have shape [1, {G.num_ws}, {G.w_dim}] (one face), not {list(ws.shape)}")
    return ws


def _run_with_hooks(G, ws, modules, noise_mode):
    """G.synthesis(ws) for one face (float32), and a copy of each module's output, in the order given.

    The copy is taken when the module returns: without autograd, later steps may overwrite
    tensors in place (layers.bias_act, scale_add), and the next layer must not change what we show.
    """
    captured = {id(m): [] for m in modules}
    handles = [m.register_forward_hook(lambda mod, args, out: captured[id(mod)].append(out.detach().clone()))
               for m in modules]
    try:
        with torch.inference_mode():
            image = G.synthesis(_one_face(G, ws), noise_mode=noise_mode)
    finally:
        for h in handles:
            h.remove()
    # Clones made outside inference mode are ordinary tensors that callers may use any way they like.
    return image.float().clone(), [captured[id(m)][0].float().clone() for m in modules]


def feature_maps(G, ws, layer, noise_mode="const"):
    """The output [C, H, W] (float32) of one feature layer (index, name or LayerInfo) for ws [1, num_ws, w_dim]."""
    info = find_layer(G, layer)
    _, (maps,) = _run_with_hooks(G, ws, [info.module], noise_mode)
    return maps[0]


def channel_strengths(maps):
    """Each channel's mean absolute activation, the measure by which channel_grid ranks them."""
    return maps.detach().double().abs().mean(dim=(1, 2)).cpu().numpy()


def _resize(image, side):
    """A square picture resized to side x side: nearest neighbour when enlarging, so that each
    map pixel stays a sharp square; box averages when shrinking, so that nothing aliases."""
    if image.size == (side, side):
        return image
    return image.resize((side, side), Image.NEAREST if side > image.size[0] else Image.BOX)


def channel_grid(maps, count=16, cell_size=None):
    """The `count` strongest channels of maps [C, H, W] (by mean |activation|, strongest first),
    each scaled by its own min / max to [0, 1] and coloured with demos.colormap, in a grid of
    demos.grid_shape(count). cell_size: each cell's side in pixels (default: the map's own).
    Returns (PIL image, the channel indices shown, in grid order)."""
    strengths = channel_strengths(maps)
    chosen = np.argsort(-strengths, kind="stable")[:max(1, min(count, len(strengths)))].tolist()
    cells = []
    for c in chosen:
        m = maps[c].detach().double().cpu().numpy()
        lo, hi = m.min(), m.max()
        unit = (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)
        cell = Image.fromarray(colormap(unit))
        cells.append(cell if cell_size is None else _resize(cell, cell_size))
    return make_grid(cells, *grid_shape(len(cells)), background="black"), chosen


def principal_components(maps, k=3):
    """The top k principal directions [k, C] of the channels over pixels, and the pixels'
    coordinates along them [k, H, W]. Each direction's sign is fixed (its largest-magnitude entry
    positive), so that the same maps always give the same picture."""
    c, h, w = maps.shape
    x = maps.detach().double().cpu().reshape(c, h * w).t()
    x = x - x.mean(dim=0, keepdim=True)
    # The C x C covariance is small where the pixel count is not (a 1024 px layer has a million).
    _, vectors = torch.linalg.eigh(x.t() @ x)
    vectors = vectors.flip(1)[:, :k].t()  # eigh sorts ascending
    signs = torch.sign(vectors.gather(1, vectors.abs().argmax(dim=1, keepdim=True)))
    signs[signs == 0] = 1
    vectors = vectors * signs
    coords = (x @ vectors.t()).t().reshape(-1, h, w)
    if coords.shape[0] < k:  # fewer channels than components: the missing ones are flat
        coords = torch.cat([coords, coords.new_zeros([k - coords.shape[0], h, w])])
        vectors = torch.cat([vectors, vectors.new_zeros([k - vectors.shape[0], c])])
    return vectors, coords


def rgb_projection(maps):
    """maps [C, H, W] as an RGB picture of H x W: red, green and blue are the pixels' coordinates
    along the top three principal components (PCA over pixels), each mapped from its 1st..99th
    percentile to 0..255, so that a few extreme pixels do not wash out the rest."""
    _, coords = principal_components(maps, 3)
    rgb = []
    for p in coords.numpy():
        lo, hi = np.percentile(p, [1, 99])
        rgb.append(np.clip((p - lo) / (hi - lo), 0, 1) if hi > lo else np.zeros_like(p))
    return Image.fromarray((np.stack(rgb, axis=-1) * 255).round().astype(np.uint8), "RGB")


def torgb_contributions(G, ws, noise_mode="const"):
    """What each resolution's ToRGB adds to the image of a StyleGAN2 skip model, for ws [1, num_ws, w_dim].

    A skip model's image is a running sum: each block upsamples the image so far (layers.upsample2d
    with the block's filter) and adds its ToRGB's output. Carrying each ToRGB's output up through
    the same upsamplings gives [(block resolution, tensor [1, img_channels, R, R])] at the image's
    resolution R, lowest resolution first, whose sum is the image (up to float rounding).
    Raises NotAvailable (a SettingsError: one sentence for people) for other models: StyleGAN2
    orig / resnet models and the other families make RGB only at the end.
    """
    reason = torgb_refusal(G)
    if reason is not None:
        raise NotAvailable(reason)
    _, outputs = _run_with_hooks(G, ws, [block.torgb for block in G.synthesis.blocks], noise_mode)
    return _carry_up(G.synthesis, outputs)


def torgb_refusal(G):
    """None where torgb_contributions works for G, else the sentence saying why it does not."""
    s = G.synthesis
    start = "Per-resolution RGB contributions exist only in StyleGAN2 models with the skip architecture"
    if not isinstance(s, stylegan2.SynthesisNetwork):
        family = {"stylegan1": "StyleGAN (2019)", "stylegan3": "StyleGAN3"}.get(getattr(G, "family", None),
                                                                                  type(s).__name__)
        return f"{start}; this is a {family} model, which makes its colours in its last layer only."
    archs = {block.architecture for block in s.blocks}
    if archs != {"skip"}:
        return f"{start}; this model's is {'/'.join(sorted(archs))}, which makes RGB at the last resolution only."
    return None


def _carry_up(s, outputs):
    """Each block's ToRGB output upsampled as the network upsamples the running image after it."""
    contributions = []
    for k, y in enumerate(outputs):
        for later in s.blocks[k + 1:]:
            y = upsample2d(y, later.resample_filter.to(y.device))
        contributions.append((s.blocks[k].resolution, y))
    return contributions


def enlarge(image, min_side=MIN_SIDE):
    """The picture scaled up by a whole factor (nearest neighbour) until its longer side is at
    least min_side pixels: small maps stay visible, with each of their pixels a sharp block."""
    factor = max(1, math.ceil(min_side / max(image.size)))
    return image if factor == 1 else image.resize((image.size[0] * factor, image.size[1] * factor), Image.NEAREST)


def _contribution_picture(y):
    """One ToRGB contribution stretched so its largest magnitude reaches full brightness or
    darkness; mid-grey is "adds nothing". The stretch is returned too, as the peak magnitude."""
    peak = float(y.abs().max())
    return to_pil(y / peak if peak > 0 else y)[0], peak


def look_inside(G, ws, layer, count=16, noise_mode="const"):
    """Everything about one layer for one face (ws [1, num_ws, w_dim], e.g. demos.seeds_to_ws(G, [seed])).

    Returns {"layer": LayerInfo, "image": the face, "grid": channel_grid of the `count` strongest
    channels, "channels": their indices, "strengths": their mean |activation|, "rgb": rgb_projection,
    "torgb": [(resolution, picture)] of torgb_contributions or None, "torgb_peaks": each
    contribution's largest magnitude (in image units, where the image spans about -1..1) or None,
    "torgb_reason": why torgb is None (a sentence for people) or None}.
    Pictures smaller than MIN_SIDE pixels are enlarged by nearest neighbour (each grid cell to at
    least MIN_SIDE, larger cells shrunk to MAX_CELL); each ToRGB contribution is stretched to the
    full range, with mid-grey meaning zero (torgb_peaks says by how much).
    """
    info = find_layer(G, layer)
    reason = torgb_refusal(G)
    torgbs = [] if reason is not None else [block.torgb for block in G.synthesis.blocks]
    # One synthesis serves both: the chosen layer's maps and, where they exist, the ToRGB outputs.
    image, (maps, *outputs) = _run_with_hooks(G, ws, [info.module] + torgbs, noise_mode)
    maps = maps[0]
    res = maps.shape[-1]
    cell = res * math.ceil(MIN_SIDE / res) if res < MIN_SIDE else min(res, MAX_CELL)
    grid, chosen = channel_grid(maps, count, cell_size=cell)
    result = {"layer": info, "image": enlarge(to_pil(image)[0]), "grid": grid, "channels": chosen,
              "strengths": channel_strengths(maps)[chosen].tolist(), "rgb": enlarge(rgb_projection(maps)),
              "torgb": None, "torgb_peaks": None, "torgb_reason": reason}
    if reason is not None:
        return result
    pictures = [(r, _contribution_picture(y)) for r, y in _carry_up(G.synthesis, outputs)]
    result["torgb"] = [(r, enlarge(picture)) for r, (picture, _) in pictures]
    result["torgb_peaks"] = [peak for _, (_, peak) in pictures]
    return result
