"""Building blocks shared by the StyleGAN2 and StyleGAN3 generators.

Parameter and buffer names follow NVIDIA's checkpoints, so their state dicts load as they are.
Weights are stored unscaled and multiplied by their "equalised learning rate" gain at run time.
"""

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

LRELU_GAIN = math.sqrt(2)


def fp32_convolutions_in_full(synthesis_forward):
    """A synthesis forward(self, ws, ...) that, on CUDA, computes an all-fp32 network's
    convolutions in full fp32.

    PyTorch lets cuDNN compute fp32 convolutions in TF32 (10-bit mantissas) by default on recent
    GPUs; images then differ from NVIDIA's fp32 results by about 1e-3, ten times the fixtures'
    tolerance. NVIDIA's training code turns TF32 off for the same reason. A network with fp16
    layers is left as PyTorch sets it, as NVIDIA's code runs it on a GPU: its fp16 layers differ
    by as much, and full fp32 made StyleGAN2 at 1024 px 20-27 % slower and its cuDNN workspace
    five times larger (measured on an H200). The setting is restored after each call.
    """
    @functools.wraps(synthesis_forward)
    def forward(self, ws, *args, **kwargs):
        if ws.device.type != "cuda" or any(getattr(m, "use_fp16", False) for m in self.modules()):
            return synthesis_forward(self, ws, *args, **kwargs)
        allowed = torch.backends.cudnn.allow_tf32
        torch.backends.cudnn.allow_tf32 = False
        try:
            return synthesis_forward(self, ws, *args, **kwargs)
        finally:
            torch.backends.cudnn.allow_tf32 = allowed
    return forward


def normalize_2nd_moment(x, eps=1e-8):
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


def bias_act(x, b=None, lrelu_slope=None, gain=1.0, clamp=None):
    """x + b (per channel, dim 1), then leaky ReLU if a slope is given, times gain, clamped.

    Without autograd the steps overwrite x (every caller passes a temporary of its own): on a
    CPU, a new tensor of tens of MB costs more in page faults than the arithmetic. With autograd
    each step makes a new tensor, as the backward pass needs them.
    """
    if b is not None:
        b = b.reshape([1, -1] + [1] * (x.ndim - 2)).to(x.dtype)
    if torch.is_grad_enabled():
        if b is not None:
            x = x + b
        if lrelu_slope is not None:
            x = F.leaky_relu(x, lrelu_slope)
        if gain != 1:
            x = x * gain
        return x if clamp is None else x.clamp(-clamp, clamp)
    if b is not None:
        x.add_(b)
    if lrelu_slope is not None:
        F.leaky_relu_(x, lrelu_slope)
    if gain != 1:
        x.mul_(gain)
    return x if clamp is None else x.clamp_(-clamp, clamp)


def scale_add(x, scale=None, addend=None):
    """x * scale + addend (either may be None); overwrites x when autograd is off, as bias_act does."""
    if torch.is_grad_enabled():
        if scale is not None:
            x = x * scale
        return x if addend is None else x + addend
    if scale is not None:
        x.mul_(scale)
    return x if addend is None else x.add_(addend)


def upfirdn2d(x, f, up=1, down=1, padding=(0, 0, 0, 0), gain=1.0):
    """Upsample by zero insertion, pad (negative crops), FIR filter, then keep every down-th pixel.

    f is a 1-D (separable) or 2-D filter, or None for no filtering; padding is (x0, x1, y0, y1).
    The filter is applied as a convolution (flipped), as in NVIDIA's resampling code. A 1-D
    filter, or a 2-D one that is the outer product of 1-D taps with themselves (NVIDIA's
    filters are), takes the fast separable path; tests/test_layers.py checks it against the
    dense one.
    """
    if f is not None and f.ndim == 2:
        f = symmetric_separable_taps(f)
    if f is not None and f.ndim == 1:
        return _upfirdn2d_separable(x, f, up, down, padding, gain)
    return _upfirdn2d_dense(x, f, up, down, padding, gain)


def symmetric_separable_taps(f):
    """The 1-D taps a with outer(a, a) == f when there are such taps, else f itself."""
    total = f.sum()
    if f.shape[0] != f.shape[1] or total <= 0:
        return f
    taps = f.sum(dim=1) / total.sqrt()
    return taps if torch.allclose(torch.outer(taps, taps), f, rtol=1e-5, atol=1e-7) else f


def _upfirdn2d_dense(x, f, up, down, padding, gain):
    n, c, h, w = x.shape
    c = int(c)  # see _resample_axis
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(n, c, h * up, w * up)
    x0, x1, y0, y1 = padding
    x = F.pad(x, [max(x0, 0), max(x1, 0), max(y0, 0), max(y1, 0)])
    x = x[:, :, max(-y0, 0): x.shape[2] - max(-y1, 0), max(-x0, 0): x.shape[3] - max(-x1, 0)]
    if f is not None:
        f = f.to(x.dtype) * (gain ** (f.ndim / 2))
        f = f.flip(list(range(f.ndim)))
        # Keeping every down-th output is a convolution with that stride.
        return F.conv2d(x, f[None, None].expand(c, 1, *f.shape), groups=c, stride=down)
    if gain != 1:
        x = x * gain
    return x[:, :, ::down, ::down]


def _upfirdn2d_separable(x, f, up, down, padding, gain):
    """upfirdn2d for a 1-D filter, one axis at a time, without computing on inserted zeros:
    upsampling is a transposed convolution with stride `up`, downsampling a strided convolution."""
    f = f.to(x.dtype) * math.sqrt(gain)
    x0, x1, y0, y1 = padding
    x = _resample_axis(x, f, up, down, x0, x1, dim=3)
    return _resample_axis(x, f, up, down, y0, y1, dim=2)


def _resample_axis(x, f, up, down, pad0, pad1, dim):
    c, taps = int(x.shape[1]), f.numel()  # int(): a constant in a traced (ONNX) graph, as the kernel's shape must be
    kernel = f.reshape([1, 1, 1, taps] if dim == 3 else [1, 1, taps, 1]).expand(c, -1, -1, -1)
    stride = (1, up) if dim == 3 else (up, 1)
    if up > 1:
        # The full convolution of the zero-stuffed signal, then the window that the padding selects.
        out_len = x.shape[dim] * up + pad0 + pad1 - taps + 1
        x = F.conv_transpose2d(x, kernel, stride=stride, groups=c)
        start = taps - 1 - pad0
        before, after = max(-start, 0), max(start + out_len - x.shape[dim], 0)
        if before or after:
            x = F.pad(x, [before, after, 0, 0] if dim == 3 else [0, 0, before, after])
        x = x.narrow(dim, start + before, out_len)
        if down > 1:
            x = x[:, :, :, ::down] if dim == 3 else x[:, :, ::down, :]
        return x
    # Zero padding common to both ends is left to the convolution, which needs no padded copy.
    common = max(min(pad0, pad1), 0)
    pad0, pad1 = pad0 - common, pad1 - common
    if pad0 > 0 or pad1 > 0:
        x = F.pad(x, [max(pad0, 0), max(pad1, 0), 0, 0] if dim == 3 else [0, 0, max(pad0, 0), max(pad1, 0)])
    if pad0 < 0 or pad1 < 0:
        x = x.narrow(dim, max(-pad0, 0), x.shape[dim] - max(-pad0, 0) - max(-pad1, 0))
    stride, conv_padding = ((1, down), (0, common)) if dim == 3 else ((down, 1), (common, 0))
    return F.conv2d(x, kernel.flip(dim), stride=stride, groups=c, padding=conv_padding)


def upsample2d(x, f, up=2):
    """Upsample by `up` with the FIR filter f (taps fw), keeping the image centred."""
    fw = f.shape[-1]
    p0, p1 = (fw + up - 1) // 2, (fw - up) // 2
    return upfirdn2d(x, f, up=up, padding=(p0, p1, p0, p1), gain=up ** 2)


def frozen_cached(module, name, tensor, compute):
    """compute(tensor), kept on the module while the tensor is unchanged and needs no gradient:
    weight-derived terms are then computed once per model instead of once per call. The key is
    the tensor's version counter, which in-place edits and load_state_dict advance; edits
    through `.data` do not, so change frozen weights in place, not through `.data`."""
    if tensor.requires_grad and torch.is_grad_enabled():
        return compute(tensor)
    key = (tensor.data_ptr(), tensor._version, tensor.dtype, tensor.device)
    cached = module.__dict__.get("_cache_" + name)
    if cached is None or cached[0] != key:
        with torch.inference_mode(False), torch.no_grad():  # a normal tensor, usable outside inference mode
            cached = (key, compute(tensor))
        module.__dict__["_cache_" + name] = cached
    return cached[1]


def fir_filter_2d(taps):
    """The normalised outer product of 1-D taps, e.g. [1, 3, 3, 1] -> the 4x4 binomial filter."""
    f = torch.as_tensor(taps, dtype=torch.float32)
    f = torch.outer(f, f)
    return f / f.sum()


class FullyConnectedLayer(nn.Module):
    def __init__(self, in_features, out_features, bias=True, lrelu=False, lr_multiplier=1.0, bias_init=0.0):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.lrelu = lrelu  # leaky ReLU (slope 0.2, gain sqrt 2) after the bias, else linear
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        bias_init = np.broadcast_to(np.asarray(bias_init, dtype=np.float32), [out_features])
        self.bias = nn.Parameter(torch.from_numpy(bias_init / lr_multiplier)) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x):
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if not self.lrelu:
            return torch.addmm(b.unsqueeze(0), x, w.t()) if b is not None else x.matmul(w.t())
        return bias_act(x.matmul(w.t()), b, lrelu_slope=0.2, gain=LRELU_GAIN)


class MappingNetwork(nn.Module):
    """z (and class c) -> w, broadcast to num_ws; truncation towards the running average w_avg."""

    def __init__(self, z_dim, c_dim, w_dim, num_ws, num_layers=8, embed_features=None, layer_features=None,
                 lr_multiplier=0.01, label_concat=False, **unused):
        """label_concat: condition as NVIDIA's TensorFlow code does (the class vector times a plain
        matrix, concatenated to z, the whole normalised) instead of the PyTorch code's embedding."""
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws, self.num_layers = z_dim, c_dim, w_dim, num_ws, num_layers
        self.label_concat = label_concat and c_dim > 0
        embed_features = w_dim if embed_features is None else embed_features
        layer_features = w_dim if layer_features is None else layer_features
        if c_dim == 0:
            embed_features = 0
        elif self.label_concat:
            embed_features = z_dim
            self.label_embedding = nn.Parameter(torch.randn([c_dim, z_dim]))
        else:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        features = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        for i in range(num_layers):
            layer = FullyConnectedLayer(features[i], features[i + 1], lrelu=True, lr_multiplier=lr_multiplier)
            setattr(self, f"fc{i}", layer)
        self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(self, z, c=None, truncation_psi=1, truncation_cutoff=None, update_emas=False):
        x = self.normalized_input(z, c)
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        return self.broadcast_and_truncate(x, truncation_psi, truncation_cutoff)

    def normalized_input(self, z, c):
        """The first layer's input: normalised z, with the class embedded for conditional models."""
        if self.c_dim > 0 and (c is None or c.ndim != 2 or c.shape[1] != self.c_dim):
            raise ValueError(f"this model is conditional: c must have shape [N, {self.c_dim}]")
        if self.label_concat:
            return normalize_2nd_moment(torch.cat([z.to(torch.float32), c.to(torch.float32) @ self.label_embedding], 1))
        parts = []
        if self.z_dim > 0:
            parts.append(normalize_2nd_moment(z.to(torch.float32)))
        if self.c_dim > 0:
            parts.append(normalize_2nd_moment(self.embed(c.to(torch.float32))))
        return torch.cat(parts, dim=1)

    def broadcast_and_truncate(self, w, truncation_psi, truncation_cutoff):
        """w [N, w_dim] -> ws [N, num_ws, w_dim], the first `truncation_cutoff` pulled towards w_avg."""
        ws = w.unsqueeze(1).repeat(1, self.num_ws, 1)
        if truncation_psi != 1:
            cutoff = self.num_ws if truncation_cutoff is None else truncation_cutoff
            ws[:, :cutoff] = self.w_avg.lerp(ws[:, :cutoff], truncation_psi)
        return ws


def images_at_once(device, img_resolution, cpu_batch_pixels):
    """How many images a synthesis network computes well at once: any number (None), except on a
    CPU, where memory traffic rather than arithmetic makes large batches of large images slower
    per image (StyleGAN2 at 1024 px: a third slower in a batch of 8 than alone; StyleGAN3-R at
    256 px: 7.7 s against 4.3 s). There, at most cpu_batch_pixels image pixels at once.
    The memory planner (planner.plan_batch) sizes the demos' batches by this rule too.
    While traced (ONNX export) any number too: the split would fix the batch size in the graph."""
    if device.type != "cpu" or torch.jit.is_tracing():
        return None
    return max(cpu_batch_pixels // img_resolution ** 2, 1)


def noise_generators(noise_seed, batch_size):
    """One CPU random generator per image, so an image's noise does not depend on its batch."""
    if noise_seed is None:
        return None
    seeds = [noise_seed] * batch_size if np.ndim(noise_seed) == 0 else list(noise_seed)
    if len(seeds) != batch_size:
        raise ValueError(f"got {len(seeds)} noise seeds for {batch_size} images")
    return [torch.Generator().manual_seed(int(s)) for s in seeds]


def random_noise(shape, generators, device, dtype):
    """Noise [N, 1, H, W] for one layer: from the per-image generators, or torch's global one."""
    if generators is None:
        return torch.randn(shape, device=device, dtype=dtype)
    noise = torch.stack([torch.randn(shape[1:], generator=g) for g in generators])
    return noise.to(device=device, dtype=dtype)


class Generator(nn.Module):
    """z, c -> image: a mapping network, then a synthesis network. The attributes and call
    signature of NVIDIA's G_ema; each family names its networks and mapping defaults."""

    family = None
    default_truncation_cutoff = None  # psi acts on the first N style inputs by default; None: on all
    mapping_network = synthesis_network = None
    mapping_defaults = {}

    def __init__(self, z_dim, c_dim, w_dim, img_resolution, img_channels, mapping_kwargs=None, **synthesis_kwargs):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.synthesis = self.synthesis_network(w_dim, img_resolution, img_channels, **synthesis_kwargs)
        self.num_ws = self.synthesis.num_ws
        mapping_kwargs = {**self.mapping_defaults, **(mapping_kwargs or {})}
        self.mapping = self.mapping_network(z_dim, c_dim, w_dim, self.num_ws, **mapping_kwargs)
        self.config = dict(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=img_resolution,
                           img_channels=img_channels, mapping_kwargs=mapping_kwargs, **synthesis_kwargs)

    def forward(self, z, c=None, truncation_psi=1, truncation_cutoff=None, **synthesis_kwargs):
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, **synthesis_kwargs)
