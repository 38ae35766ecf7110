"""StyleGAN2 generator (Karras et al. 2020), as trained by NVIDIA's stylegan2-ada-pytorch and stylegan3.

Synthesis is a stack of blocks, one per resolution 4, 8, ..., img_resolution. Each block has
two modulated 3x3 convolutions (the 4x4 block one, on a learned constant), each followed by
per-pixel noise, bias and leaky ReLU, and a toRGB layer. The first convolution of a block
doubles the resolution (transposed convolution + FIR filter). Layer i of the synthesis is
driven by ws[:, i]; a block's toRGB shares its w with the next block's first convolution.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import layers
from .layers import (LRELU_GAIN, FullyConnectedLayer, MappingNetwork, bias_act, fir_filter_2d, frozen_cached,
                     images_at_once, noise_generators, random_noise, scale_add, upfirdn2d, upsample2d)


def modulated_conv2d(x, weight, styles, demodulate=True, padding=0, up=1, resample_filter=None, noise=None,
                     weight_square_sums=None, conv_weight=None):
    """Convolve each image with weight scaled per input channel by its styles, then demodulate.

    Done as one ordinary convolution on style-scaled inputs, with demodulation applied to the
    outputs: the same result as a per-image weight, with one large convolution instead of a
    grouped one. A single image convolves with its own weight when that is smaller than its
    feature map. weight_square_sums and conv_weight (the weight in the layout the convolution
    takes, see conv_layout) may be passed in when they are already known.
    """
    n = x.shape[0]
    out_channels, in_channels, kh, kw = weight.shape
    if x.dtype == torch.float16 and demodulate:
        # Rescale so that fp16 cannot overflow; demodulation undoes it.
        weight = weight * (1 / math.sqrt(in_channels * kh * kw) / weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)
        weight_square_sums = None
    if demodulate:
        # The norm of each image's modulated weight, without building that weight.
        if weight_square_sums is None:
            weight_square_sums = weight.square().sum(dim=[2, 3])
        dcoefs = (styles.square() @ weight_square_sums.t() + 1e-8).rsqrt()
    if n == 1 and x.numel() > weight.numel():
        # One image with a feature map larger than the weight: modulating and demodulating the
        # weight spares two passes over the feature map (and a copy of it).
        scale = styles.reshape(1, -1, 1, 1) * (dcoefs.reshape(-1, 1, 1, 1) if demodulate else 1)
        w = conv_layout((weight * scale).to(x.dtype), up)
        demodulate = False
    else:
        w = conv_weight if conv_weight is not None and x.dtype == torch.float32 else conv_layout(weight.to(x.dtype), up)
        x = x * styles.to(x.dtype).reshape(n, -1, 1, 1)
    if up == 1:
        x = F.conv2d(x, w, padding=padding)
    else:
        # Transposed convolution with stride 2, then the FIR filter smooths the result.
        x = F.conv_transpose2d(x, w, stride=up)
        fw = resample_filter.shape[-1]
        p0 = padding + (fw + up - 1) // 2 - (kw - 1)
        p1 = padding + (fw - up) // 2 - (kw - up)
        x = upfirdn2d(x, resample_filter, padding=(p0, p1, p0, p1), gain=up ** 2)
    return scale_add(x, dcoefs.to(x.dtype).reshape(n, -1, 1, 1) if demodulate else None,
                     None if noise is None else noise.to(x.dtype))


def conv_layout(weight, up):
    """The weight as F.conv2d (up == 1) or F.conv_transpose2d takes it, channels-last: on CPUs
    channels-last convolutions, transposed ones above all, run several times faster."""
    return (weight if up == 1 else weight.transpose(0, 1)).contiguous(memory_format=torch.channels_last)


class SynthesisLayer(nn.Module):
    """Modulated 3x3 convolution (optionally upsampling), noise, bias, leaky ReLU, clamp."""

    def __init__(self, in_channels, out_channels, w_dim, resolution, up=1, use_noise=True, conv_clamp=None,
                 resample_filter=(1, 3, 3, 1)):
        super().__init__()
        self.resolution = resolution
        self.up = up
        self.use_noise = use_noise
        self.conv_clamp = conv_clamp
        self.register_buffer("resample_filter", fir_filter_2d(resample_filter))
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, 3, 3]))
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))

    def forward(self, x, w, noise_mode="const", noise_scale=1.0, generators=None, gain=1.0):
        styles = self.affine(w)
        noise = None
        if self.use_noise and noise_mode != "none" and noise_scale != 0:
            strength = self.noise_strength * noise_scale
            if noise_mode == "random":
                shape = [x.shape[0], 1, self.resolution, self.resolution]
                noise = random_noise(shape, generators, x.device, x.dtype) * strength
            elif noise_mode == "const":
                noise = self.noise_const * strength
            else:
                raise ValueError(f"noise_mode must be 'const', 'random' or 'none', not {noise_mode!r}")
        x = modulated_conv2d(x, self.weight, styles, padding=1, up=self.up, resample_filter=self.resample_filter,
                             weight_square_sums=frozen_cached(self, "weight_square_sums", self.weight,
                                                              lambda w: w.square().sum(dim=[2, 3])),
                             conv_weight=frozen_cached(self, "conv_weight", self.weight,
                                                       lambda w: conv_layout(w, self.up)),
                             noise=noise)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias, lrelu_slope=0.2, gain=LRELU_GAIN * gain, clamp=clamp)


class ToRGBLayer(nn.Module):
    def __init__(self, in_channels, out_channels, w_dim, conv_clamp=None):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, 1, 1]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / math.sqrt(in_channels)

    def forward(self, x, w):
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False)
        return bias_act(x, self.bias, clamp=self.conv_clamp)


class UpsampleConv1x1(nn.Module):
    """The resnet architecture's skip path: FIR upsampling, then an unmodulated 1x1 convolution."""

    def __init__(self, in_channels, out_channels, resample_filter=(1, 3, 3, 1)):
        super().__init__()
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, 1, 1]))
        self.register_buffer("resample_filter", fir_filter_2d(resample_filter))
        self.weight_gain = 1 / math.sqrt(in_channels)

    def forward(self, x, gain=1.0):
        x = upsample2d(x, self.resample_filter)
        return F.conv2d(x, self.weight.to(x.dtype) * (self.weight_gain * gain))


class SynthesisBlock(nn.Module):
    def __init__(self, in_channels, out_channels, w_dim, resolution, img_channels, is_last, architecture="skip",
                 conv_clamp=None, use_fp16=False, resample_filter=(1, 3, 3, 1), use_noise=True, img_resample_filter=None):
        super().__init__()
        if architecture not in ("orig", "skip", "resnet"):
            raise ValueError(f"unknown StyleGAN2 architecture {architecture!r}")
        self.in_channels = in_channels
        self.resolution = resolution
        self.architecture = architecture
        self.use_fp16 = use_fp16
        # up-samples the image of the skip architecture
        self.register_buffer("resample_filter", fir_filter_2d(img_resample_filter or resample_filter))
        self.num_conv = 1 if in_channels == 0 else 2
        self.num_torgb = 1 if (is_last or architecture == "skip") else 0
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=2, use_noise=use_noise,
                                        conv_clamp=conv_clamp, resample_filter=resample_filter)
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution, use_noise=use_noise,
                                    conv_clamp=conv_clamp, resample_filter=resample_filter)
        if self.num_torgb:
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim, conv_clamp=conv_clamp)
        if in_channels != 0 and architecture == "resnet":
            self.skip = UpsampleConv1x1(in_channels, out_channels, resample_filter)

    def conv_layers(self):
        return [self.conv1] if self.in_channels == 0 else [self.conv0, self.conv1]

    def forward(self, x, img, ws, dtype, noise_mode, noise_scales, generators):
        if self.in_channels == 0:
            x = self.const.to(dtype).unsqueeze(0).repeat(ws.shape[0], 1, 1, 1).contiguous(memory_format=torch.channels_last)
        else:
            x = x.to(dtype)
        conv_kwargs = dict(noise_mode=noise_mode, generators=generators)
        if self.in_channels == 0:
            x = self.conv1(x, ws[:, 0], noise_scale=noise_scales[0], **conv_kwargs)
        elif self.architecture == "resnet":
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv0(x, ws[:, 0], noise_scale=noise_scales[0], **conv_kwargs)
            x = self.conv1(x, ws[:, 1], noise_scale=noise_scales[1], gain=math.sqrt(0.5), **conv_kwargs)
            x = y + x
        else:
            x = self.conv0(x, ws[:, 0], noise_scale=noise_scales[0], **conv_kwargs)
            x = self.conv1(x, ws[:, 1], noise_scale=noise_scales[1], **conv_kwargs)
        if img is not None:
            img = upsample2d(img, self.resample_filter)
        if self.num_torgb:
            y = self.torgb(x, ws[:, self.num_conv]).to(torch.float32)
            img = y if img is None else img + y
        return x, img


class SynthesisNetwork(nn.Module):
    def __init__(self, w_dim, img_resolution, img_channels, channel_base=32768, channel_max=512, num_fp16_res=0,
                 architecture="skip", conv_clamp=None, resample_filter=(1, 3, 3, 1), use_noise=True, channels=None,
                 img_resample_filter=None, **unused):
        """channels: each block's width, 4 px first, instead of channel_base // resolution capped at
        channel_max (rosinality's code and its forks use tables of their own). img_resample_filter:
        the taps that up-sample the image between blocks, when not resample_filter (rosinality's
        code keeps [1, 3, 3, 1] there whatever its blur kernel)."""
        super().__init__()
        log2 = int(np.log2(img_resolution))
        if img_resolution < 4 or 2 ** log2 != img_resolution:
            raise ValueError(f"img_resolution must be a power of two >= 4, not {img_resolution}")
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.block_resolutions = [2 ** i for i in range(2, log2 + 1)]
        if channels is None:
            channels = {res: min(channel_base // res, channel_max) for res in self.block_resolutions}
        elif len(channels) == len(self.block_resolutions):
            channels = dict(zip(self.block_resolutions, channels))
        else:
            raise ValueError(f"channels must give {len(self.block_resolutions)} widths, one per block, not {len(channels)}")
        fp16_resolution = max(2 ** (log2 + 1 - num_fp16_res), 8)
        self.num_ws = 0
        for res in self.block_resolutions:
            block = SynthesisBlock(channels[res // 2] if res > 4 else 0, channels[res], w_dim, res, img_channels,
                                   is_last=(res == img_resolution), architecture=architecture,
                                   conv_clamp=conv_clamp, use_fp16=(res >= fp16_resolution),
                                   resample_filter=resample_filter, use_noise=use_noise,
                                   img_resample_filter=img_resample_filter)
            self.num_ws += block.num_conv
            setattr(self, f"b{res}", block)
        self.num_ws += block.num_torgb
        self.blocks = [getattr(self, f"b{res}") for res in self.block_resolutions]
        self.noise_layers = [layer for block in self.blocks for layer in block.conv_layers()]
        # w i drives conv layer i (resolution 4, 8, 8, 16, 16, ...); the last one drives the final toRGB.
        self.ws_resolutions = [layer.resolution for layer in self.noise_layers] + [img_resolution]
        self.has_noise = use_noise
        self.cpu_batch_pixels = 2 * 512 ** 2  # see layers.images_at_once
        self.accepts_transform = False
        self.styles_follow_resolution = True

    def style_affines(self):
        """For each w, the affine layers that turn it into the styles of a modulated convolution
        (not a toRGB's): w i drives conv layer i; the last w only the final toRGB."""
        return [[layer.affine] for layer in self.noise_layers] + [[]]

    @layers.fp32_convolutions_in_full
    def forward(self, ws, noise_mode="const", noise_strength=1.0, noise_seed=None, **unused):
        """ws [N, num_ws, w_dim] -> images [N, img_channels, H, W], float32, about [-1, 1].

        noise_strength: a multiplier of the learned noise strengths, one number or one per layer
        (a sequence of len(noise_layers)). noise_seed: an int, or one per image, makes 'random'
        noise reproducible.
        """
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise ValueError(f"ws must have shape [N, {self.num_ws}, {self.w_dim}], not {list(ws.shape)}")
        scales = np.broadcast_to(np.asarray(noise_strength, dtype=np.float64), [len(self.noise_layers)]).tolist()
        n = ws.shape[0]
        generators = noise_generators(noise_seed, n) if noise_mode == "random" else None
        step = images_at_once(ws.device, self.img_resolution, self.cpu_batch_pixels) or n
        if n <= step:
            return self.synthesize(ws, noise_mode, scales, generators)
        return torch.cat([self.synthesize(ws[i:i + step], noise_mode, scales, generators and generators[i:i + step])
                          for i in range(0, n, step)])

    def synthesize(self, ws, noise_mode, scales, generators):
        use_fp16 = ws.device.type == "cuda"
        ws = ws.to(torch.float32)
        x = img = None
        w_idx = 0
        for block in self.blocks:
            dtype = torch.float16 if (use_fp16 and block.use_fp16) else torch.float32
            block_ws = ws[:, w_idx: w_idx + block.num_conv + block.num_torgb]
            x, img = block(x, img, block_ws, dtype, noise_mode, scales[w_idx: w_idx + block.num_conv], generators)
            w_idx += block.num_conv
        return img


class Generator(layers.Generator):
    """z, c -> image (see layers.Generator)."""

    family = "stylegan2"
    mapping_network, synthesis_network = MappingNetwork, SynthesisNetwork
