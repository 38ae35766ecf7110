"""StyleGAN3 generator (Karras et al. 2021, "Alias-Free GAN"), configs T and R, as NVIDIA trained them.

The synthesis starts from Fourier features (a grid of sinusoids that w rotates and translates,
and that the `transform` buffer moves further), then 14 layers that each: modulate a 3x3 (T) or
1x1 (R) convolution, upsample with a low-pass filter, apply leaky ReLU, and low-pass filter
down again. Doing the nonlinearity at a higher sampling rate, between filters, keeps it from
creating aliases, which is what makes the images move with their input like real objects.
Cutoff frequencies rise from layer to layer; the last layers are critically sampled.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import layers
from .layers import LRELU_GAIN, FullyConnectedLayer, MappingNetwork, bias_act, images_at_once, scale_add, upfirdn2d


def modulated_conv2d(x, weight, styles, demodulate=True, padding=0, input_gain=None):
    """Style-modulated convolution, StyleGAN3's variant: weight and styles are normalised first
    (so that fp16 cannot overflow), then one ordinary convolution on style-scaled inputs."""
    n = x.shape[0]
    if demodulate:
        weight = weight * weight.square().mean(dim=[1, 2, 3], keepdim=True).rsqrt()
        styles = styles * styles.square().mean().rsqrt()
        dcoefs = (styles.square() @ weight.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt()
    if input_gain is not None:
        styles = styles * input_gain
    x = x * styles.to(x.dtype).reshape(n, -1, 1, 1)
    if x.device.type == "cpu":
        # The resampling filters leave some layers' outputs channels-first; oneDNN's convolution
        # (the 1x1 ones of config R above all) is several times faster channels-last.
        x = x.contiguous(memory_format=torch.channels_last)
    x = F.conv2d(x, weight.to(x.dtype), padding=padding)
    return scale_add(x, dcoefs.to(x.dtype).reshape(n, -1, 1, 1) if demodulate else None)


def kaiser_beta(numtaps, width):
    """Kaiser window beta for the attenuation a filter of numtaps can reach with this
    transition width (as a fraction of Nyquist); Kaiser's empirical formulas."""
    atten = 2.285 * (numtaps - 1) * math.pi * width + 7.95
    if atten > 50:
        return 0.1102 * (atten - 8.7)
    if atten > 21:
        return 0.5842 * (atten - 21) ** 0.4 + 0.07886 * (atten - 21)
    return 0.0


def lowpass_filter(numtaps, cutoff, width, fs, radial=False):
    """A Kaiser-windowed low-pass FIR filter, normalised to unit DC gain: 1-D (separable) sinc,
    or 2-D radially symmetric jinc. None when numtaps is 1 (no filtering)."""
    if numtaps == 1:
        return None
    beta = kaiser_beta(numtaps, width / (fs / 2))
    window = np.kaiser(numtaps, beta)
    x = np.arange(numtaps) - (numtaps - 1) / 2
    if not radial:
        f = np.sinc(2 * cutoff / fs * x) * window
    else:
        r = np.hypot(*np.meshgrid(x / fs, x / fs))
        # An odd number of taps puts a sample at r = 0, where J1(2 pi c r) / (pi r) tends to c.
        safe_r = np.where(r > 0, r, 1.0)
        jinc = torch.special.bessel_j1(torch.from_numpy(2 * math.pi * cutoff * safe_r)).numpy() / (math.pi * safe_r)
        f = np.where(r > 0, jinc, cutoff) * np.outer(window, window)
    return torch.as_tensor(f / f.sum(), dtype=torch.float32)


class SynthesisInput(nn.Module):
    """Fourier features: `channels` sinusoids of fixed frequencies, rotated and translated by w."""

    def __init__(self, w_dim, channels, size, sampling_rate, bandwidth):
        super().__init__()
        self.channels = channels
        self.size = np.broadcast_to(np.asarray(size), [2]).astype(int)
        self.sampling_rate = float(sampling_rate)
        self.bandwidth = float(bandwidth)
        # Random directions, with radii spread over the band (NVIDIA's initialisation).
        freqs = torch.randn([channels, 2])
        radii = freqs.square().sum(dim=1, keepdim=True).sqrt()
        freqs = freqs / (radii * radii.square().exp().pow(0.25)) * bandwidth
        self.weight = nn.Parameter(torch.randn([channels, channels]))
        self.affine = FullyConnectedLayer(w_dim, 4, bias_init=[1, 0, 0, 0])
        self.affine.weight.data.zero_()
        self.register_buffer("transform", torch.eye(3))  # set by users to translate / rotate the image
        self.register_buffer("freqs", freqs)
        self.register_buffer("phases", torch.rand([channels]) - 0.5)

    def forward(self, w, transform=None):
        n = w.shape[0]
        transform = self.transform if transform is None else transform
        # w -> a rotation (cos, sin) and translation (x, y) of the features, applied after `transform`.
        t = self.affine(w)
        t = t / t[:, :2].norm(dim=1, keepdim=True)
        rotation = torch.eye(3, device=w.device).repeat(n, 1, 1)
        rotation[:, 0, 0], rotation[:, 0, 1] = t[:, 0], -t[:, 1]
        rotation[:, 1, 0], rotation[:, 1, 1] = t[:, 1], t[:, 0]
        translation = torch.eye(3, device=w.device).repeat(n, 1, 1)
        translation[:, 0, 2], translation[:, 1, 2] = -t[:, 2], -t[:, 3]
        transforms = rotation @ translation @ transform.to(device=w.device, dtype=torch.float32).unsqueeze(0)

        freqs = self.freqs.unsqueeze(0)
        phases = self.phases.unsqueeze(0) + (freqs @ transforms[:, :2, 2:]).squeeze(2)
        freqs = freqs @ transforms[:, :2, :2]
        # Fade out frequencies that the transform pushed towards Nyquist, to avoid aliasing.
        amplitudes = (1 - (freqs.norm(dim=2) - self.bandwidth) / (self.sampling_rate / 2 - self.bandwidth)).clamp(0, 1)

        # Sample the sinusoids on a grid spanning size / sampling_rate units, centred on 0.
        theta = torch.zeros([1, 2, 3], device=w.device)
        theta[0, 0, 0] = 0.5 * self.size[0] / self.sampling_rate
        theta[0, 1, 1] = 0.5 * self.size[1] / self.sampling_rate
        grid = F.affine_grid(theta, [1, 1, int(self.size[1]), int(self.size[0])], align_corners=False)
        x = (grid.unsqueeze(3) @ freqs.permute(0, 2, 1).unsqueeze(1).unsqueeze(2)).squeeze(3)  # [N, H, W, C]
        x = torch.sin((x + phases.unsqueeze(1).unsqueeze(2)) * (2 * math.pi))
        x = x * amplitudes.unsqueeze(1).unsqueeze(2)
        x = x @ (self.weight / math.sqrt(self.channels)).t()
        return x.permute(0, 3, 1, 2)


class SynthesisLayer(nn.Module):
    """Modulated convolution, then filtered leaky ReLU: upsample, nonlinearity, downsample."""

    def __init__(self, w_dim, is_torgb, is_critically_sampled, use_fp16, in_channels, out_channels, in_size,
                 out_size, in_sampling_rate, out_sampling_rate, in_cutoff, out_cutoff, in_half_width,
                 out_half_width, conv_kernel=3, filter_size=6, lrelu_upsampling=2, use_radial_filters=False,
                 conv_clamp=256):
        super().__init__()
        self.is_torgb = is_torgb
        self.use_fp16 = use_fp16
        self.in_channels, self.out_channels = in_channels, out_channels
        self.in_size = np.broadcast_to(np.asarray(in_size), [2]).astype(int)
        self.out_size = np.broadcast_to(np.asarray(out_size), [2]).astype(int)
        self.conv_kernel = 1 if is_torgb else conv_kernel
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, self.conv_kernel, self.conv_kernel]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.register_buffer("magnitude_ema", torch.ones([]))

        # The nonlinearity runs at tmp_sampling_rate: lrelu_upsampling times the higher of in / out.
        tmp_sampling_rate = max(in_sampling_rate, out_sampling_rate) * (1 if is_torgb else lrelu_upsampling)
        self.up_factor = int(round(tmp_sampling_rate / in_sampling_rate))
        self.down_factor = int(round(tmp_sampling_rate / out_sampling_rate))
        up_taps = filter_size * self.up_factor if self.up_factor > 1 and not is_torgb else 1
        down_taps = filter_size * self.down_factor if self.down_factor > 1 and not is_torgb else 1
        self.register_buffer("up_filter", lowpass_filter(up_taps, in_cutoff, in_half_width * 2, tmp_sampling_rate))
        self.register_buffer("down_filter", lowpass_filter(down_taps, out_cutoff, out_half_width * 2, tmp_sampling_rate,
                                                           radial=use_radial_filters and not is_critically_sampled))

        # Padding so that the output has exactly out_size pixels, centred.
        pad_total = (self.out_size - 1) * self.down_factor + 1
        pad_total -= (self.in_size + self.conv_kernel - 1) * self.up_factor
        pad_total += up_taps + down_taps - 2
        pad_lo = (pad_total + self.up_factor) // 2
        pad_hi = pad_total - pad_lo
        self.padding = [int(pad_lo[0]), int(pad_hi[0]), int(pad_lo[1]), int(pad_hi[1])]

    def forward(self, x, w):
        dtype = torch.float16 if (self.use_fp16 and x.device.type == "cuda") else torch.float32
        styles = self.affine(w)
        if self.is_torgb:
            styles = styles / math.sqrt(self.in_channels * self.conv_kernel ** 2)
        x = modulated_conv2d(x.to(dtype), self.weight, styles, demodulate=not self.is_torgb,
                             padding=self.conv_kernel - 1, input_gain=self.magnitude_ema.rsqrt())
        x = bias_act(x, self.bias)
        x = upfirdn2d(x, self.up_filter, up=self.up_factor, padding=self.padding, gain=self.up_factor ** 2)
        if self.is_torgb:
            x = bias_act(x, clamp=self.conv_clamp)
            return upfirdn2d(x, self.down_filter, down=self.down_factor)
        # Leaky ReLU, gain, clamp: the gain is applied by the (linear) down filter instead, which
        # saves a pass over the up-sampled signal; the clamp is scaled to match.
        x = F.leaky_relu(x, 0.2)
        if self.conv_clamp is not None:
            x = x.clamp_(-self.conv_clamp / LRELU_GAIN, self.conv_clamp / LRELU_GAIN)
        return upfirdn2d(x, self.down_filter, down=self.down_factor, gain=LRELU_GAIN)


class SynthesisNetwork(nn.Module):
    def __init__(self, w_dim, img_resolution, img_channels, channel_base=32768, channel_max=512, num_layers=14,
                 num_critical=2, first_cutoff=2, first_stopband=2 ** 2.1, last_stopband_rel=2 ** 0.3, margin_size=10,
                 output_scale=0.25, num_fp16_res=4, **layer_kwargs):
        super().__init__()
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.num_ws = num_layers + 2
        self.output_scale = output_scale
        layer_kwargs = {k: v for k, v in layer_kwargs.items() if k in (
            "conv_kernel", "filter_size", "lrelu_upsampling", "use_radial_filters", "conv_clamp")}

        # Cutoffs and stopbands rise geometrically to the last, critically sampled layers.
        last_cutoff = img_resolution / 2
        last_stopband = last_cutoff * last_stopband_rel
        exponents = np.minimum(np.arange(num_layers + 1) / (num_layers - num_critical), 1)
        cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** exponents
        stopbands = first_stopband * (last_stopband / first_stopband) ** exponents
        sampling_rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, img_resolution))))
        half_widths = np.maximum(stopbands, sampling_rates / 2) - cutoffs
        sizes = sampling_rates + margin_size * 2
        sizes[-2:] = img_resolution
        channels = np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max))
        channels[-1] = img_channels

        self.input = SynthesisInput(w_dim, int(channels[0]), int(sizes[0]), sampling_rates[0], cutoffs[0])
        self.layer_names = []
        for idx in range(num_layers + 1):
            prev = max(idx - 1, 0)
            layer = SynthesisLayer(
                w_dim, is_torgb=(idx == num_layers), is_critically_sampled=(idx >= num_layers - num_critical),
                use_fp16=bool(sampling_rates[idx] * (2 ** num_fp16_res) > img_resolution),
                in_channels=int(channels[prev]), out_channels=int(channels[idx]),
                in_size=int(sizes[prev]), out_size=int(sizes[idx]),
                in_sampling_rate=int(sampling_rates[prev]), out_sampling_rate=int(sampling_rates[idx]),
                in_cutoff=cutoffs[prev], out_cutoff=cutoffs[idx],
                in_half_width=half_widths[prev], out_half_width=half_widths[idx], **layer_kwargs)
            name = f"L{idx}_{layer.out_size[0]}_{layer.out_channels}"
            setattr(self, name, layer)
            self.layer_names.append(name)
        # Spatial size each w drives: the input's, each layer's output, the toRGB's (= the image).
        self.ws_resolutions = [int(sizes[0])] + [int(getattr(self, n).out_size[0]) for n in self.layer_names]
        self.noise_layers = []  # StyleGAN3 has no noise inputs
        self.has_noise = False
        # Its layers work at up to four times the image's pixels: one 256 px image at a time on a
        # CPU (see layers.images_at_once).
        self.cpu_batch_pixels = 256 ** 2
        self.accepts_transform = True  # forward(ws, transform=...) translates / rotates the input
        self.styles_follow_resolution = False  # its layers' sizes do not follow a resolution pyramid

    def style_affines(self):
        """For each w, the affine layers that turn it into the styles of a modulated convolution:
        none for w 0 (it sets the input's transform) and for the last (the toRGB's)."""
        convs = [[getattr(self, name).affine] for name in self.layer_names[:-1]]
        return [[]] + convs + [[]]

    @layers.fp32_convolutions_in_full
    def forward(self, ws, transform=None, **unused):
        """ws [N, num_ws, w_dim] -> images [N, img_channels, H, W], float32. Noise arguments are ignored.

        transform: a 3x3 matrix for the input (the inverse of the image's translation / rotation)
        for this call only; by default the `input.transform` buffer, as in NVIDIA's code."""
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise ValueError(f"ws must have shape [N, {self.num_ws}, {self.w_dim}], not {list(ws.shape)}")
        n = ws.shape[0]
        step = images_at_once(ws.device, self.img_resolution, self.cpu_batch_pixels) or n
        if n > step:
            return torch.cat([self(ws[i:i + step], transform) for i in range(0, n, step)])
        ws = ws.to(torch.float32).unbind(dim=1)
        x = self.input(ws[0], transform)
        for name, w in zip(self.layer_names, ws[1:]):
            x = getattr(self, name)(x, w)
        return (x * self.output_scale).to(torch.float32)


class Generator(layers.Generator):
    """z, c -> image (see layers.Generator)."""

    family = "stylegan3"
    mapping_network, synthesis_network = MappingNetwork, SynthesisNetwork
    mapping_defaults = {"num_layers": 2}
