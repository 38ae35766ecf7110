"""A compact, pure-PyTorch StyleGAN2 / StyleGAN3 generator that loads NVIDIA's checkpoints safely."""

import numpy as np

from .loading import LoadError, default_device, load, reuse_freed_memory, save_safetensors


def seed_to_z(seed, z_dim):
    """NVIDIA's convention: seed -> np.random.RandomState(seed).randn(z_dim), as float32."""
    return np.random.RandomState(seed).randn(z_dim).astype(np.float32)


__all__ = ["LoadError", "default_device", "load", "reuse_freed_memory", "save_safetensors", "seed_to_z"]
