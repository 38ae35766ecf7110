"""Projection: the ws whose image best reproduces a target, found by gradient descent.

In W (one w for every layer, as NVIDIA's projector) or W+ (one w per layer: closer likeness,
edits less cleanly). From the average w, with Adam, a learning rate that warms up and then
falls off along a cosine, and noise added to w early on (shrinking to nothing by three
quarters of the way), as in NVIDIA's projector. The noise inputs stay constant: the saved W,
rendered with constant noise, is exactly the reconstruction shown.

Losses: the pixel difference (mean squared) plus MS-SSIM (structural similarity at several
scales), always available; LPIPS on VGG16 too when the `lpips` package and the VGG16 weights are
already on this machine (nothing is downloaded here).
"""

import math
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from . import directions

LR = 0.1
NOISE_RAMP = 0.75  # w noise falls to zero by this fraction of the steps
LR_RAMP_UP, LR_RAMP_DOWN = 0.05, 0.25
INITIAL_NOISE = 0.05  # times W's spread
MS_SSIM_WEIGHT = 1.0
LPIPS_WEIGHT = 1.0
VGG16_FILE = "vgg16-397923af.pth"  # what torchvision (and so lpips) keeps in torch's hub cache


@dataclass
class Step:
    step: int  # 1-based
    total: int
    loss: float
    ws: torch.Tensor  # [1, num_ws, w_dim], the current estimate (detached)


def to_tensor(image, channels):
    """A PIL image -> [1, C, H, W] float in [-1, 1], as the generator's images are."""
    a = np.asarray(image.convert("L" if channels == 1 else "RGB"), dtype=np.float32)
    a = a[:, :, None] if a.ndim == 2 else a
    return torch.from_numpy(a).permute(2, 0, 1)[None] / 127.5 - 1


# ----------------------------------------------------------------------------- losses

def _gaussian_window(size=11, sigma=1.5):
    x = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-x ** 2 / (2 * sigma ** 2))
    return g / g.sum()


def ms_ssim(a, b, levels=None):
    """Multi-scale structural similarity of images in [-1, 1] ([N, C, H, W]), with the five-scale weights
    of Wang et al. (2003), using as many scales as the image size allows (the 11-tap window must fit)."""
    weights = torch.tensor([0.0448, 0.2856, 0.3001, 0.2363, 0.1333])
    side = min(a.shape[-2:])
    levels = levels or max(1, min(5, int(math.log2(side / 11)) + 1))
    weights = weights[:levels] / weights[:levels].sum()
    a, b = (a + 1) / 2, (b + 1) / 2  # to [0, 1], data range 1
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    g = _gaussian_window().to(a)
    channels = a.shape[1]
    kernel_x = g.reshape(1, 1, 1, -1).repeat(channels, 1, 1, 1)
    kernel_y = g.reshape(1, 1, -1, 1).repeat(channels, 1, 1, 1)

    def blur(x):
        return F.conv2d(F.conv2d(x, kernel_x, groups=channels), kernel_y, groups=channels)

    values = []
    for level in range(levels):
        mu_a, mu_b = blur(a), blur(b)
        var_a = blur(a * a) - mu_a ** 2
        var_b = blur(b * b) - mu_b ** 2
        cov = blur(a * b) - mu_a * mu_b
        contrast_structure = ((2 * cov + c2) / (var_a + var_b + c2)).mean(dim=[1, 2, 3])
        if level == levels - 1:
            luminance = ((2 * mu_a * mu_b + c1) / (mu_a ** 2 + mu_b ** 2 + c1)).mean(dim=[1, 2, 3])
            values.append((luminance * contrast_structure).clamp_min(1e-6))
        else:
            values.append(contrast_structure.clamp_min(1e-6))
            a, b = F.avg_pool2d(a, 2), F.avg_pool2d(b, 2)
    return torch.prod(torch.stack(values) ** weights[:, None].to(a), dim=0)


def vgg_weights_cached():
    """Where torchvision's VGG16 weights are, if they are already on this machine."""
    path = os.path.join(torch.hub.get_dir(), "checkpoints", VGG16_FILE)
    return path if os.path.exists(path) else None


def lpips_loss():
    """LPIPS (VGG) as a function of two [-1, 1] image batches, or None when it cannot run offline."""
    if vgg_weights_cached() is None:
        return None
    try:
        import lpips
        model = lpips.LPIPS(net="vgg", verbose=False).eval().requires_grad_(False)
    except Exception:  # not installed, or its weights not loadable here
        return None
    return lambda a, b: model(a, b).mean()


def loss_names(use_lpips):
    return ["pixel (MSE)", "MS-SSIM"] + (["LPIPS (VGG16)"] if use_lpips else [])


# ----------------------------------------------------------------------------- optimisation

def project_steps(G, target, space="w+", steps=300, class_idx=None, seed=0, use_lpips=None):
    """Yields a Step after every optimisation step; returns the final ws [1, num_ws, w_dim] and the loss
    names used. target: a PIL image at the model's resolution. use_lpips: None = when available."""
    device = next(G.parameters()).device
    goal = to_tensor(target, G.img_channels).to(device)
    perceptual = lpips_loss() if use_lpips in (None, True) else None
    if perceptual is not None:
        perceptual_goal = _for_lpips(goal)

    samples = directions.w_samples(G, directions.GANSPACE_SAMPLES, class_idx)
    w_avg = torch.from_numpy(samples.mean(axis=0)).float().to(device)
    w_std = float(np.sqrt(((samples - samples.mean(axis=0)) ** 2).sum() / len(samples)))
    count = G.num_ws if space == "w+" else 1
    w = w_avg.repeat(1, count, 1).clone().requires_grad_(True)
    optimizer = torch.optim.Adam([w], betas=(0.9, 0.999), lr=LR)
    generator = torch.Generator().manual_seed(seed)

    for i in range(steps):
        t = i / steps
        ramp = min(1.0, (1 - t) / LR_RAMP_DOWN)
        ramp = (0.5 - 0.5 * math.cos(ramp * math.pi)) * min(1.0, t / LR_RAMP_UP)
        for group in optimizer.param_groups:
            group["lr"] = LR * ramp
        noise_scale = w_std * INITIAL_NOISE * max(0.0, 1 - t / NOISE_RAMP) ** 2
        noisy = w + torch.randn(w.shape, generator=generator).to(device) * noise_scale
        ws = noisy.expand(1, G.num_ws, -1) if count == 1 else noisy
        image = G.synthesis(ws, noise_mode="const")
        loss = F.mse_loss(image, goal) + MS_SSIM_WEIGHT * (1 - ms_ssim(image, goal).mean())
        if perceptual is not None:
            loss = loss + LPIPS_WEIGHT * perceptual(_for_lpips(image), perceptual_goal)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        yield Step(i + 1, steps, float(loss.detach()), _full(w.detach(), G.num_ws))
    return _full(w.detach(), G.num_ws), loss_names(perceptual is not None)


def _full(w, num_ws):
    return w.expand(1, num_ws, -1).clone() if w.shape[1] == 1 else w.clone()


def _for_lpips(images):
    """LPIPS takes RGB in [-1, 1]; large images are compared at 256 px, as NVIDIA's projector does."""
    if images.shape[1] == 1:
        images = images.repeat(1, 3, 1, 1)
    if images.shape[-1] > 256:
        images = F.interpolate(images, size=(256, 256), mode="area")
    return images


def psnr(a, b):
    """Peak signal-to-noise ratio in dB of two uint8 images (arrays)."""
    mse = np.mean((np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * math.log10(255 ** 2 / mse)
