"""Sliced Wasserstein distance on Laplacian-pyramid patches (Karras et al. 2018, Progressive GANs).

Each image set is decomposed into a Laplacian pyramid; from every level, random 7x7 patches
are taken, normalised per colour channel, and the two sets of patch vectors are compared by
the Wasserstein distance of their 1-D projections on random directions. Lower is closer; the
value of two independent samples of the same distribution is the floor.
"""

import numpy as np
import torch
import torch.nn.functional as F

PATCH = 7


def _blur_down(x):
    """Gaussian (binomial 5-tap) blur, then every second pixel."""
    k = torch.tensor([1, 4, 6, 4, 1], dtype=x.dtype) / 16
    k = (k[:, None] * k[None, :]).expand(x.shape[1], 1, 5, 5)
    x = F.conv2d(F.pad(x, [2, 2, 2, 2], mode="reflect"), k, groups=x.shape[1])
    return x[:, :, ::2, ::2]


def laplacian_pyramid(x, min_size=16):
    levels = []
    while x.shape[-1] > min_size:
        small = _blur_down(x)
        up = F.interpolate(small, scale_factor=2, mode="bilinear", align_corners=False)
        levels.append(x - up)
        x = small
    levels.append(x)
    return levels


def _patches(level, per_image, rng):
    n, c, h, w = level.shape
    ys = rng.integers(0, h - PATCH + 1, size=(n, per_image))
    xs = rng.integers(0, w - PATCH + 1, size=(n, per_image))
    out = np.empty((n * per_image, c, PATCH, PATCH), dtype=np.float32)
    arr = level.numpy()
    k = 0
    for i in range(n):
        for y, x in zip(ys[i], xs[i]):
            out[k] = arr[i, :, y:y + PATCH, x:x + PATCH]
            k += 1
    return out


def _normalise(p):
    mean = p.mean(axis=(0, 2, 3), keepdims=True)
    std = p.std(axis=(0, 2, 3), keepdims=True) + 1e-8
    return ((p - mean) / std).reshape(len(p), -1)


def sliced_wasserstein(a, b, rng, directions=512, repeats=4):
    results = []
    for _ in range(repeats):
        d = rng.standard_normal((a.shape[1], directions)).astype(np.float32)
        d /= np.linalg.norm(d, axis=0, keepdims=True)
        pa, pb = np.sort(a @ d, axis=0), np.sort(b @ d, axis=0)
        results.append(np.abs(pa - pb).mean())
    return float(np.mean(results))


def swd(images_a, images_b, patches_per_image=64, seed=0):
    """SWD x 1e3 per pyramid level (finest first) and their mean, for two float image tensors
    [N, C, H, W] in [-1, 1] with the same N."""
    rng = np.random.default_rng(seed)
    levels_a, levels_b = laplacian_pyramid(images_a.float()), laplacian_pyramid(images_b.float())
    per_level = []
    for la, lb in zip(levels_a, levels_b):
        pa = _normalise(_patches(la, patches_per_image, rng))
        pb = _normalise(_patches(lb, patches_per_image, rng))
        per_level.append(1e3 * sliced_wasserstein(pa, pb, rng))
    return per_level, float(np.mean(per_level))
