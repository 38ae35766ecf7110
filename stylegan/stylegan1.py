"""The original StyleGAN generator (Karras et al. 2019), as trained by NVIDIA's TensorFlow code.

Mapping: z (pixel-normalised, with an embedded label for conditional models) -> w through
fully connected layers. Synthesis starts from a learned 4x4 constant; every layer adds
per-pixel noise (scaled per channel), a bias and a leaky ReLU, then normalises each feature
map (instance normalisation) and sets its mean and standard deviation from w (AdaIN). Each
resolution doubles the size with nearest-neighbour upsampling + 3x3 convolution, or, from
128 px on, the original's fused transposed convolution, then a [1, 2, 1] blur. Two ws per
resolution; the final toRGB is a 1x1 convolution with no style.

Call surface as in stylegan2.py (G.mapping, G.synthesis, noise modes, per-layer noise
strengths), so the demos work unchanged. Truncation, as in the original, defaults to the
first 8 ws.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import layers
from .layers import FullyConnectedLayer, LRELU_GAIN, frozen_cached, noise_generators, random_noise, upfirdn2d

DEFAULT_TRUNCATION_CUTOFF = 8
BLUR_TAPS = torch.tensor([1.0, 2.0, 1.0]) / 4  # separable: [1, 2, 1] x [1, 2, 1] / 16


class MappingNetwork(layers.MappingNetwork):
    """z (and class c) -> w, broadcast to num_ws; truncation towards w_avg on ws < 8 by default.

    Conditional models concatenate the embedded label to z, as the TensorFlow StyleGAN2 does."""

    def __init__(self, z_dim, c_dim, w_dim, num_ws, num_layers=8, layer_features=512, lr_multiplier=0.01):
        super().__init__(z_dim, c_dim, w_dim, num_ws, num_layers=num_layers, layer_features=layer_features,
                         lr_multiplier=lr_multiplier, label_concat=True)
        for i in range(num_layers):
            getattr(self, f"fc{i}").lrelu = False  # applied in forward, differently from StyleGAN2

    def forward(self, z, c=None, truncation_psi=1, truncation_cutoff=None, **unused):
        x = self.normalized_input(z, c)
        for i in range(self.num_layers):
            # The original puts the leaky ReLU's gain sqrt(2) on the weights only, not on the bias.
            x = F.leaky_relu(getattr(self, f"fc{i}")(x * LRELU_GAIN), 0.2)
        cutoff = DEFAULT_TRUNCATION_CUTOFF if truncation_cutoff is None else truncation_cutoff
        return self.broadcast_and_truncate(x, truncation_psi, cutoff)


class StyleLayer(nn.Module):
    """One synthesis layer: [convolution,] noise, bias, leaky ReLU, instance norm, style (AdaIN).

    `conv` is None (the constant's layer), "same" (3x3), "nearest" (2x nearest-neighbour
    upsampling, 3x3, blur) or "fused" (2x transposed convolution of the 3x3 weights, blur).
    """

    def __init__(self, in_channels, out_channels, w_dim, resolution, conv=None):
        super().__init__()
        self.resolution, self.conv = resolution, conv
        if conv is not None:
            self.weight = nn.Parameter(torch.randn([out_channels, in_channels, 3, 3]))
            self.weight_gain = LRELU_GAIN / math.sqrt(in_channels * 9)
        self.register_buffer("noise_const", torch.randn([resolution, resolution]))
        self.noise_strength = nn.Parameter(torch.zeros([out_channels]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.affine = FullyConnectedLayer(w_dim, 2 * out_channels)

    def forward(self, x, w, noise_mode="const", noise_scale=1.0, generators=None):
        if self.conv is not None:
            x = self._convolve(x)
        if noise_mode != "none" and noise_scale != 0:
            strength = (self.noise_strength * noise_scale).reshape(1, -1, 1, 1)
            if noise_mode == "random":
                shape = [x.shape[0], 1, self.resolution, self.resolution]
                x = x + random_noise(shape, generators, x.device, x.dtype) * strength
            elif noise_mode == "const":
                x = x + self.noise_const * strength
            else:
                raise ValueError(f"noise_mode must be 'const', 'random' or 'none', not {noise_mode!r}")
        x = F.leaky_relu(x + self.bias.reshape(1, -1, 1, 1), 0.2)
        x = x - x.mean(dim=[2, 3], keepdim=True)
        x = x * (x.square().mean(dim=[2, 3], keepdim=True) + 1e-8).rsqrt()
        scale, shift = self.affine(w).unflatten(1, (2, -1)).unbind(1)
        return x * (scale + 1).unsqueeze(-1).unsqueeze(-1) + shift.unsqueeze(-1).unsqueeze(-1)

    def _convolve(self, x):
        if self.conv == "same":
            return F.conv2d(x, self.weight * self.weight_gain, padding=1)
        if self.conv == "nearest":
            x = F.conv2d(F.interpolate(x, scale_factor=2, mode="nearest"), self.weight * self.weight_gain, padding=1)
        else:
            # Computed once per model (and so a constant of an ONNX graph, whose shape is known).
            w = frozen_cached(self, "fused_weight", self.weight, lambda weight: _fused_weight(weight * self.weight_gain))
            x = F.conv_transpose2d(x, w, stride=2, padding=1)
        return upfirdn2d(x, BLUR_TAPS.to(x.device), padding=(1, 1, 1, 1))


def _fused_weight(w):
    """The sum of the 3x3 kernel at four one-pixel shifts: a 4x4 kernel whose stride-2 transposed
    convolution is the original's fused upsampling convolution (in conv_transpose2d's layout)."""
    w = F.pad(w, [1, 1, 1, 1])
    return (w[:, :, 1:, 1:] + w[:, :, :-1, 1:] + w[:, :, 1:, :-1] + w[:, :, :-1, :-1]).transpose(0, 1)


class SynthesisNetwork(nn.Module):
    def __init__(self, w_dim, img_resolution, img_channels, channel_base=16384, channel_max=512, fused_from=128,
                 **unused):
        """channel_base, channel_max: a block at resolution r has min(channel_base // r, channel_max)
        channels. fused_from: the first resolution upsampled by the fused transposed convolution
        (the original's fused_scale='auto'; 0 for every block, None for none)."""
        super().__init__()
        log2 = int(np.log2(img_resolution))
        if img_resolution < 4 or 2 ** log2 != img_resolution:
            raise ValueError(f"img_resolution must be a power of two >= 4, not {img_resolution}")
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        channels = {2 ** i: min(channel_base // 2 ** i, channel_max) for i in range(2, log2 + 1)}
        self.const = nn.Parameter(torch.ones([channels[4], 4, 4]))
        layers = [StyleLayer(0, channels[4], w_dim, 4), StyleLayer(channels[4], channels[4], w_dim, 4, conv="same")]
        for i in range(3, log2 + 1):
            res = 2 ** i
            up = "fused" if fused_from is not None and res >= fused_from else "nearest"
            layers += [StyleLayer(channels[res // 2], channels[res], w_dim, res, conv=up),
                       StyleLayer(channels[res], channels[res], w_dim, res, conv="same")]
        self.layers = nn.ModuleList(layers)
        self.torgb = nn.Conv2d(channels[img_resolution], img_channels, 1)
        self.torgb_gain = 1 / math.sqrt(channels[img_resolution])
        self.num_ws = len(layers)
        self.noise_layers = list(layers)
        self.ws_resolutions = [layer.resolution for layer in layers]
        self.has_noise = True
        self.accepts_transform = False
        self.styles_follow_resolution = True
        self.cpu_batch_pixels = 2 * 512 ** 2  # see layers.images_at_once

    def style_affines(self):
        """For each w, the affine layers that turn it into styles (here AdaIN's scale and shift)."""
        return [[layer.affine] for layer in self.layers]

    @layers.fp32_convolutions_in_full
    def forward(self, ws, noise_mode="const", noise_strength=1.0, noise_seed=None, **unused):
        """ws [N, num_ws, w_dim] -> images [N, img_channels, H, W], float32, about [-1, 1].
        noise_strength and noise_seed as in stylegan2.SynthesisNetwork."""
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise ValueError(f"ws must have shape [N, {self.num_ws}, {self.w_dim}], not {list(ws.shape)}")
        scales = np.broadcast_to(np.asarray(noise_strength, dtype=np.float64), [self.num_ws]).tolist()
        generators = noise_generators(noise_seed, ws.shape[0]) if noise_mode == "random" else None
        ws = ws.to(torch.float32)
        x = self.const.unsqueeze(0).repeat(ws.shape[0], 1, 1, 1)
        for i, layer in enumerate(self.layers):
            x = layer(x, ws[:, i], noise_mode=noise_mode, noise_scale=scales[i], generators=generators)
        return F.conv2d(x, self.torgb.weight * self.torgb_gain, self.torgb.bias)


class Generator(layers.Generator):
    """z, c -> image (see layers.Generator)."""

    family = "stylegan1"
    default_truncation_cutoff = DEFAULT_TRUNCATION_CUTOFF
    mapping_network, synthesis_network = MappingNetwork, SynthesisNetwork
