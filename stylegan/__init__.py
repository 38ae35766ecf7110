"""A compact, pure-PyTorch StyleGAN (2019), StyleGAN2 and StyleGAN3 generator that loads NVIDIA's checkpoints safely.

Torch is imported when the loading functions are first used, so that `python -m stylegan --help`
answers at once.
"""

import numpy as np

LOADING_NAMES = ("LoadError", "default_device", "load", "reuse_freed_memory", "save_safetensors")


def seed_to_z(seed, z_dim):
    """NVIDIA's convention: seed -> np.random.RandomState(seed).randn(z_dim), as float32."""
    return np.random.RandomState(seed).randn(z_dim).astype(np.float32)


def __getattr__(name):
    if name in LOADING_NAMES:
        from . import loading
        return getattr(loading, name)
    raise AttributeError(f"module 'stylegan' has no attribute {name!r}")


__all__ = [*LOADING_NAMES, "seed_to_z"]
