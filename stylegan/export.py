"""ONNX export: the whole generator (z [, c] -> image) or its synthesis network (ws -> image).

The graph is traced on the CPU with a batch of two (so that no single-image shortcut is baked
in) and its batch axis is left dynamic. Truncation psi, the noise (constant or none) and, for
StyleGAN3, the input transform are fixed at export time.
"""

import os
import warnings
from pathlib import Path

import torch
from torch import nn

OPSET = 20  # StyleGAN3 needs 20 (AffineGrid); run by onnxruntime since 1.17
NOISE_MODES = ("const", "none")


class ExportError(Exception):
    """A model or option that cannot be exported; the message is one sentence meant for people."""


class _Whole(nn.Module):
    def __init__(self, G, psi, cutoff, noise_mode):
        super().__init__()
        self.G, self.psi, self.cutoff, self.noise_mode = G, psi, cutoff, noise_mode

    def forward(self, z, c=None):
        return self.G(z, c, truncation_psi=self.psi, truncation_cutoff=self.cutoff, noise_mode=self.noise_mode)


class _Synthesis(nn.Module):
    def __init__(self, G, noise_mode):
        super().__init__()
        self.synthesis, self.noise_mode = G.synthesis, noise_mode

    def forward(self, ws):
        return self.synthesis(ws, noise_mode=self.noise_mode)


def export_onnx(G, path, synthesis_only=False, psi=1.0, cutoff=None, noise_mode="const", opset=OPSET):
    """Write G as an ONNX model at `path`; returns the names and shapes of its inputs ('batch' is dynamic).

    Inputs: 'z' [batch, z_dim] and, for a conditional model, 'c' [batch, c_dim] (one-hot class);
    or with synthesis_only 'ws' [batch, num_ws, w_dim]. Output: 'image' [batch, channels, H, W],
    float32, about [-1, 1]. Nothing is left at `path` when the export fails.
    """
    if noise_mode not in NOISE_MODES:
        raise ExportError(f"noise {noise_mode!r} cannot be exported, as an ONNX graph holds no random generator "
                          "of ours: use const or none.")
    try:
        import onnx  # noqa: F401  torch's exporter needs it
    except ImportError:
        raise ExportError("ONNX export needs the onnx package: pip install onnx (or this project's [onnx] extra).") from None
    device = next(G.parameters()).device
    if device.type != "cpu":
        raise ExportError("export a generator loaded on the CPU (load it with device='cpu').")
    batch = 2
    if synthesis_only:
        module = _Synthesis(G, noise_mode)
        inputs = {"ws": torch.zeros([batch, G.num_ws, G.w_dim])}
    else:
        module = _Whole(G, psi, cutoff if cutoff is not None else G.default_truncation_cutoff, noise_mode)
        inputs = {"z": torch.randn([batch, G.z_dim], generator=torch.Generator().manual_seed(0))}
        if G.c_dim:
            inputs["c"] = torch.eye(G.c_dim)[:batch]
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on Python values it fixed
            module(*inputs.values())  # fills the layers' caches of weight-derived tensors: constants of the graph
            torch.onnx.export(module.eval(), tuple(inputs.values()), str(tmp), input_names=list(inputs),
                              output_names=["image"], opset_version=opset, dynamo=False,
                              dynamic_axes={name: {0: "batch"} for name in [*inputs, "image"]})
        os.replace(tmp, path)
    except OSError:
        raise
    except Exception as e:
        raise ExportError(f"the {G.family} generator could not be exported to ONNX ({type(e).__name__}).") from e
    finally:
        tmp.unlink(missing_ok=True)
    return {name: ["batch", *value.shape[1:]] for name, value in inputs.items()}
