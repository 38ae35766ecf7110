"""Directions in W that change one thing about a face (pose, age, light), found from the model itself.

SeFa (Shen & Zhou, "Closed-Form Factorization of Latent Semantics in GANs", CVPR 2021): the
directions that the style layers of a range of layers respond to most. With A the affine
weights of those layers' style inputs stacked along their outputs ([outputs, w_dim], each
output's row made unit length), the directions are the eigenvectors of AᵀA, strongest first.
Only weights: milliseconds.

GANSpace (Härkönen et al., NeurIPS 2020): the principal components of W, from seeded samples
of the mapping network; their values are the variances along them.

Directions files: `directions` [k, w_dim] (unit vectors, strongest first) and `values` [k] in
an .npz, or one direction as a [w_dim] or [1, w_dim] .npy, the form in which published
boundaries such as InterFaceGAN's are shared.

A strength along a direction is counted in standard deviations of W along it (measured on the
same seeded samples), so that 1 means as much change as faces typically differ by there,
whatever the model's scale.
"""

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .outputs import read_arrays, save_arrays
from .settings import SettingsError

GANSPACE_SAMPLES = 10_000  # mapped z per GANSpace (as the GANSpace paper's default)
SAMPLE_SEED = 0  # z = RandomState(SAMPLE_SEED).randn(n, z_dim): the same samples everywhere
MAPPING_CHUNK = 1000
_CACHE_LOCK = threading.RLock()  # ganspace() asks for w_samples() inside its computation


@dataclass(frozen=True)
class Directions:
    vectors: np.ndarray  # [k, w_dim] float32, unit length, strongest first
    values: np.ndarray  # [k]: SeFa's eigenvalues, GANSpace's variances, or a file's values
    method: str  # "sefa", "ganspace" or "file"

    def explained(self):
        """Each direction's share of the total (GANSpace: of W's variance)."""
        total = float(self.values.sum())
        return self.values / total if total > 0 else np.zeros_like(self.values)


def _cached(G, key, compute):
    """compute() once per generator and key (models are not changed after loading)."""
    with _CACHE_LOCK:
        cache = G.__dict__.setdefault("_directions_cache", {})
        if key not in cache:
            cache[key] = compute()
        return cache[key]


def _strongest_first(values, vectors):
    """Eigen-pairs (values ascending, vectors as columns, as eigh gives them) -> descending rows,
    each vector's sign fixed (its largest component positive) so results do not flip between runs."""
    order = np.argsort(values)[::-1]
    values, vectors = values[order], vectors[:, order].T
    signs = np.sign(vectors[np.arange(len(vectors)), np.abs(vectors).argmax(axis=1)])
    return values, vectors * signs[:, None]


def sefa(G, layers):
    """SeFa directions of the style layers driven by ws [start, stop)."""
    start, stop = layers
    affines = [a for per_w in G.synthesis.style_affines()[start:stop] for a in per_w]
    if not affines:
        raise SettingsError(f"Layers {start}-{stop - 1} of this model drive no style convolutions, so SeFa finds "
                            "nothing there; choose other layers.")

    def compute():
        A = torch.cat([a.weight.detach().to("cpu", torch.float64) for a in affines])
        A = A / A.norm(dim=1, keepdim=True).clamp_min(1e-12)
        values, vectors = torch.linalg.eigh(A.T @ A)
        values, vectors = _strongest_first(values.numpy(), vectors.numpy())
        return Directions(vectors.astype(np.float32), values.astype(np.float32), "sefa")
    return _cached(G, ("sefa", start, stop), compute)


def w_samples(G, count=GANSPACE_SAMPLES, class_idx=None):
    """count ws [count, w_dim] (float64) of seeded z, mapped at psi 1."""
    def compute():
        z = np.random.RandomState(SAMPLE_SEED).randn(count, G.z_dim).astype(np.float32)
        device = next(G.parameters()).device
        c = None
        out = []
        with torch.inference_mode():
            for i in range(0, count, MAPPING_CHUNK):
                chunk = torch.from_numpy(z[i:i + MAPPING_CHUNK]).to(device)
                if G.c_dim:
                    c = torch.zeros([len(chunk), G.c_dim], device=device)
                    c[:, class_idx] = 1
                out.append(G.mapping(chunk, c)[:, 0].to("cpu", torch.float64))
        return torch.cat(out).numpy()
    return _cached(G, ("w", count, class_idx), compute)


def ganspace(G, samples=GANSPACE_SAMPLES, class_idx=None):
    """GANSpace: the principal components of W over `samples` seeded mapping samples."""
    def compute():
        w = w_samples(G, samples, class_idx)
        centred = w - w.mean(axis=0)
        values, vectors = np.linalg.eigh(centred.T @ centred / (len(w) - 1))
        values, vectors = _strongest_first(values, vectors)
        return Directions(vectors.astype(np.float32), np.maximum(values, 0).astype(np.float32), "ganspace")
    return _cached(G, ("ganspace", samples, class_idx), compute)


def spread(G, vector, samples=GANSPACE_SAMPLES, class_idx=None):
    """The standard deviation of W along a unit vector: what a strength of 1 moves."""
    w = w_samples(G, samples, class_idx)
    return float((w @ np.asarray(vector, dtype=np.float64)).std(ddof=1))  # as ganspace's variances


# ----------------------------------------------------------------------------- files

def save_directions(path, directions):
    """Write directions as .npz: `directions` [k, w_dim] float32 and `values` [k]."""
    return save_arrays(path, directions=directions.vectors.astype(np.float32),
                       values=directions.values.astype(np.float32))


def read_directions(path, w_dim):
    """Directions from an .npz (`directions`, optional `values`) or an .npy ([w_dim] or [k, w_dim]),
    checked against a model's w_dim; each made unit length."""
    return from_arrays(read_arrays(path, ("directions", "values"), "directions"), Path(path).name, w_dim)


def from_arrays(arrays, name, w_dim):
    """Directions from a directions file's arrays (see read_directions)."""
    vectors = arrays.get("directions")
    if vectors is None:
        raise SettingsError(f"{name} has no 'directions' array: a directions file is an .npz with 'directions' "
                            "[k, w_dim] (and 'values' [k]), or a .npy of one direction.")
    if vectors.ndim == 1:
        vectors = vectors[None]
    if vectors.ndim != 2 or not len(vectors) or not np.issubdtype(vectors.dtype, np.number):
        raise SettingsError(f"The directions in {name} have shape {list(vectors.shape)}; they must be [k, w_dim] "
                            "or [w_dim] numbers.")
    if vectors.shape[1] != w_dim:
        raise SettingsError(f"The directions in {name} are {vectors.shape[1]} wide, but this model's W is {w_dim} "
                            "wide: they were made for another model.")
    vectors = vectors.astype(np.float64)
    if not np.isfinite(vectors).all():
        raise SettingsError(f"The directions in {name} contain NaN or infinite numbers.")
    norms = np.linalg.norm(vectors, axis=1)
    if (norms < 1e-12).any():
        raise SettingsError(f"A direction in {name} is all zeros, so it points nowhere.")
    values = arrays.get("values")
    if values is None or values.shape != (len(vectors),) or not np.isfinite(values.astype(np.float64)).all():
        values = np.ones(len(vectors))
    return Directions((vectors / norms[:, None]).astype(np.float32), values.astype(np.float32), "file")
