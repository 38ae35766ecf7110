"""rosinality's stylegan2-pytorch checkpoints (.pt), mapped onto our StyleGAN2 modules.

Three layouts exist: the training script's dict (`g`, `d`, `g_ema`, optimiser states, `args`),
the converter's dict (`g_ema`, `latent_avg`) and a bare `g_ema` state dict. We use `g_ema`.

The network is NVIDIA's StyleGAN2 "skip" generator under other names. What differs:
- convolution weights carry a leading batch axis and are scaled by 1/sqrt(fan_in) at run time
  (we store them scaled: demodulation divides by the same norm, eps included);
- the 1x1 toRGB weights are scaled the same way (our toRGB scales its styles instead: equal);
- noise strengths are 1-element vectors, the constant noise is the `noises.noise_i` buffers;
- biases of toRGB are [1, C, 1, 1]; the blur kernels are stored (times up-sampling factor^2),
  the convolutions' and the image up-sampling's apart (the latter stays [1, 3, 3, 1]);
- the channel widths come from a table of its own (forks change it): read from the tensors.
"""

import math

import torch

from .layers import MappingNetwork, fir_filter_2d

LR_MULTIPLIER = 0.01  # the mapping's learning-rate multiplier (lr_mlp): the only value its scripts use
W_AVG_SAMPLES = 4096  # without a stored latent_avg, the truncation centre is the mean of this many
W_AVG_SEED = 0  # mapped samples of z from torch.Generator().manual_seed(W_AVG_SEED)


class RosinalityError(Exception):
    """The file is rosinality's format but cannot be read as such; the message is one sentence."""


def layout(data):
    """Which of the three layouts `data` (what torch.load gave) is, in words, or None."""
    if isinstance(data, dict) and isinstance(data.get("g_ema"), dict):
        if "args" in data or "g" in data:
            return "training checkpoint, its g_ema"
        if "latent_avg" in data:
            return "converter's file: g_ema, latent_avg"
        return "a dict with g_ema"
    if isinstance(data, dict) and "style.1.weight" in data and "input.input" in data:
        return "a bare g_ema state dict"
    return None


def convert(data):
    """(config, state, truncation centre in words) for our stylegan2.Generator from a rosinality
    checkpoint of any layout (see layout())."""
    g = data["g_ema"] if "g_ema" in data else data
    args = data.get("args") if "g_ema" in data else None
    latent_avg = data.get("latent_avg") if "g_ema" in data else None

    def tensor(key):
        value = g.get(key)
        if not isinstance(value, torch.Tensor):
            raise RosinalityError(f"its g_ema has no tensor {key!r}.")
        return value.to(torch.float32)

    if "iwt.ll" in g or getattr(args, "state", None) and args.state.get("arch", "stylegan2") != "stylegan2":
        raise RosinalityError("it holds a SWAGAN generator (wavelets), which we do not read: only StyleGAN2's.")
    n_mlp = 0
    while f"style.{n_mlp + 1}.weight" in g:
        n_mlp += 1
    num_upsampling_blocks = 0
    while f"to_rgbs.{num_upsampling_blocks}.conv.weight" in g:
        num_upsampling_blocks += 1
    style_dim = tensor("style.1.weight").shape[1]
    size = 2 ** (2 + num_upsampling_blocks)
    num_ws = 2 * (2 + num_upsampling_blocks) - 2
    _check_args(args, size=size, latent=style_dim, n_mlp=n_mlp)

    taps = _taps([tensor(f"convs.{2 * j}.conv.blur.kernel") for j in range(num_upsampling_blocks)])
    img_taps = _taps([tensor(f"to_rgbs.{j}.upsample.kernel") for j in range(num_upsampling_blocks)])
    f, img_f = fir_filter_2d(taps), fir_filter_2d(img_taps)

    state = {}
    for i in range(n_mlp):
        state[f"mapping.fc{i}.weight"] = tensor(f"style.{i + 1}.weight")
        state[f"mapping.fc{i}.bias"] = tensor(f"style.{i + 1}.bias")
    state["synthesis.b4.const"] = tensor("input.input")[0]

    def conv(ours, theirs, noise_index):
        weight = tensor(f"{theirs}.conv.weight")[0]
        state[f"{ours}.weight"] = weight / math.sqrt(weight[0].numel())
        state[f"{ours}.affine.weight"] = tensor(f"{theirs}.conv.modulation.weight")
        state[f"{ours}.affine.bias"] = tensor(f"{theirs}.conv.modulation.bias")
        state[f"{ours}.noise_strength"] = tensor(f"{theirs}.noise.weight").reshape([])
        state[f"{ours}.noise_const"] = tensor(f"noises.noise_{noise_index}")[0, 0]
        state[f"{ours}.bias"] = tensor(f"{theirs}.activate.bias")
        state[f"{ours}.resample_filter"] = f

    def torgb(ours, theirs):
        state[f"{ours}.weight"] = tensor(f"{theirs}.conv.weight")[0]
        state[f"{ours}.affine.weight"] = tensor(f"{theirs}.conv.modulation.weight")
        state[f"{ours}.affine.bias"] = tensor(f"{theirs}.conv.modulation.bias")
        state[f"{ours}.bias"] = tensor(f"{theirs}.bias").reshape(-1)

    channels = [tensor("input.input").shape[1]]
    conv("synthesis.b4.conv1", "conv1", 0)
    torgb("synthesis.b4.torgb", "to_rgb1")
    state["synthesis.b4.resample_filter"] = img_f
    for j in range(num_upsampling_blocks):
        block = f"synthesis.b{2 ** (j + 3)}"
        channels.append(tensor(f"convs.{2 * j}.conv.weight").shape[1])
        conv(f"{block}.conv0", f"convs.{2 * j}", 2 * j + 1)
        conv(f"{block}.conv1", f"convs.{2 * j + 1}", 2 * j + 2)
        torgb(f"{block}.torgb", f"to_rgbs.{j}")
        state[f"{block}.resample_filter"] = img_f

    config = dict(z_dim=style_dim, c_dim=0, w_dim=style_dim, img_resolution=size,
                  img_channels=tensor("to_rgb1.conv.weight").shape[1],
                  mapping_kwargs={"num_layers": n_mlp, "lr_multiplier": LR_MULTIPLIER},
                  architecture="skip", channels=channels, resample_filter=taps, img_resample_filter=img_taps)
    if latent_avg is not None:
        if not isinstance(latent_avg, torch.Tensor) or latent_avg.numel() != style_dim:
            raise RosinalityError(f"its latent_avg is not a vector of {style_dim} numbers.")
        state["mapping.w_avg"] = latent_avg.reshape(-1).to(torch.float32)
        centre = "the latent_avg stored in the file"
    else:
        state["mapping.w_avg"] = _mean_w(state, style_dim, n_mlp, num_ws)
        centre = f"the mean of {W_AVG_SAMPLES} seeded mapping samples (the file stores no latent_avg)"
    return config, state, centre


def _check_args(args, **expected):
    """The training options, when stored, must describe the weights found."""
    fields = getattr(args, "state", None)
    if not isinstance(fields, dict):
        return
    for name, value in expected.items():
        if name in fields and fields[name] != value:
            raise RosinalityError(f"its args say {name} = {fields[name]!r} but its g_ema has {name} = {value}.")


def _taps(kernels):
    """The 1-D taps of stored 2-D blur kernels (all must be one and the same separable kernel)."""
    if not kernels:
        return [1.0, 3.0, 3.0, 1.0]
    first = kernels[0]
    if first.ndim != 2 or any(k.shape != first.shape or not torch.allclose(k, first) for k in kernels):
        raise RosinalityError("its blur kernels differ between layers, which our StyleGAN2 does not support.")
    taps = first.sum(dim=1)
    taps = taps / taps.sum()
    if not torch.allclose(torch.outer(taps, taps), first / first.sum(), rtol=1e-5, atol=1e-7):
        raise RosinalityError("its blur kernel is not separable, which our StyleGAN2 does not support.")
    return taps.tolist()


def _mean_w(state, style_dim, n_mlp, num_ws):
    """The truncation centre when none is stored: the mean w of W_AVG_SAMPLES seeded samples."""
    mapping = MappingNetwork(style_dim, 0, style_dim, num_ws, num_layers=n_mlp, lr_multiplier=LR_MULTIPLIER)
    prefix = "mapping."
    weights = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    mapping.load_state_dict({**weights, "w_avg": torch.zeros(style_dim)})
    z = torch.randn([W_AVG_SAMPLES, style_dim], generator=torch.Generator().manual_seed(W_AVG_SEED))
    with torch.no_grad():
        return mapping(z)[:, 0].mean(dim=0)
