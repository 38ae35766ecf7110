"""NVIDIA's TensorFlow checkpoints: the original StyleGAN (2019) and StyleGAN2 (NVlabs/stylegan2).

Such a pickle is a tuple (G, D, Gs) of `dnnlib.tflib.network.Network` objects, read by
safe_pickle into Records whose state holds `static_kwargs` (the constructor arguments given),
`components` (mapping, synthesis) and `variables` (name, numpy array) in TensorFlow's layouts:
convolutions [kh, kw, in, out], dense layers [in, out]. Arguments not given take the defaults
of NVIDIA's TensorFlow code, listed below. Nothing in the file is executed.
"""

import math

import numpy as np
import torch

from . import stylegan1, stylegan2
from .layers import fir_filter_2d
from .safe_pickle import Record

# Defaults of G_style / G_mapping / G_synthesis (NVlabs/stylegan) and G_main / G_mapping /
# G_synthesis_stylegan2 (NVlabs/stylegan2) for the arguments that shape the network.
STYLEGAN1_DEFAULTS = dict(latent_size=512, label_size=0, dlatent_size=512, num_channels=3, resolution=1024,
                          fmap_base=8192, fmap_decay=1.0, fmap_max=512, mapping_layers=8, mapping_fmaps=512,
                          mapping_lrmul=0.01, mapping_nonlinearity="lrelu", normalize_latents=True, use_wscale=True,
                          use_styles=True, const_input_layer=True, use_noise=True, nonlinearity="lrelu",
                          use_pixel_norm=False, use_instance_norm=True, fused_scale="auto", blur_filter=[1, 2, 1])
STYLEGAN2_DEFAULTS = dict(latent_size=512, label_size=0, dlatent_size=512, num_channels=3, resolution=1024,
                          fmap_base=16 << 10, fmap_decay=1.0, fmap_min=1, fmap_max=512, mapping_layers=8,
                          mapping_fmaps=512, mapping_lrmul=0.01, mapping_nonlinearity="lrelu", normalize_latents=True,
                          architecture="skip", nonlinearity="lrelu", resample_kernel=[1, 3, 3, 1])
# Arguments whose other values change the network in ways we do not implement.
STYLEGAN1_FIXED = ["fmap_decay", "mapping_nonlinearity", "normalize_latents", "use_wscale", "use_styles",
                   "const_input_layer", "use_noise", "nonlinearity", "use_pixel_norm", "use_instance_norm",
                   "blur_filter"]
STYLEGAN2_FIXED = ["fmap_decay", "mapping_nonlinearity", "normalize_latents", "nonlinearity"]


class UnsupportedTFCheckpoint(ValueError):
    """The TensorFlow network is of a kind or configuration we cannot run; one sentence why."""


def from_tf_networks(networks):
    """(family, config, state dict) from the (G, D, Gs) tuple of a TensorFlow checkpoint."""
    if len(networks) != 3 or not isinstance(networks[2], Record) or networks[2].class_name != "Network":
        raise UnsupportedTFCheckpoint("expected a TensorFlow snapshot, a tuple (G, D, Gs) of networks.")
    Gs = networks[2].state
    components = Gs.get("components") or {}
    mapping, synthesis = components.get("mapping"), components.get("synthesis")
    if not isinstance(mapping, Record) or not isinstance(synthesis, Record):
        raise UnsupportedTFCheckpoint("the generator Gs has no mapping and synthesis networks.")
    variables = {}
    for network, prefix in ((Gs, ""), (mapping.state, "mapping/"), (synthesis.state, "synthesis/")):
        for name, value in network.get("variables") or []:
            variables[prefix + str(name)] = value
    kind = (Gs.get("build_func_name"), synthesis.state.get("build_func_name"))
    for name in ("lod", "synthesis/lod"):
        lod = float(np.asarray(variables.pop(name, 0)))
        if lod != 0:
            raise UnsupportedTFCheckpoint(f"this snapshot was taken during progressive growing (lod {lod:g}, "
                                          "not 0): use the finished network.")
    kwargs = dict(Gs.get("static_kwargs") or {})
    for network in (mapping.state, synthesis.state):
        kwargs.update(network.get("static_kwargs") or {})
    if kind == ("G_style", "G_synthesis"):
        return "stylegan1", *_stylegan1(kwargs, variables)
    if kind == ("G_main", "G_synthesis_stylegan2"):
        return "stylegan2", *_stylegan2(kwargs, variables)
    raise UnsupportedTFCheckpoint(f"TensorFlow networks built by {kind[0]}/{kind[1]} are not supported; "
                                  "we read the original StyleGAN (G_style) and StyleGAN2 (G_main with "
                                  "G_synthesis_stylegan2).")


def _settings(kwargs, defaults, fixed):
    settings = {**defaults, **{k: _plain(v) for k, v in kwargs.items() if k in defaults}}
    for key in fixed:
        if settings[key] != defaults[key]:
            raise UnsupportedTFCheckpoint(f"the network was built with {key}={settings[key]!r}, which we do not "
                                          f"support (only {defaults[key]!r}).")
    resolution = settings["resolution"]
    if not isinstance(resolution, int) or resolution < 4 or resolution & (resolution - 1):
        raise UnsupportedTFCheckpoint(f"resolution {resolution!r} is not a power of two.")
    return settings


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in np.asarray(value).tolist()]
    return value


class _Variables:
    """TensorFlow variables consumed by name, so that none is silently left over."""

    def __init__(self, variables):
        self.variables = variables

    def take(self, name):
        if name not in self.variables:
            raise UnsupportedTFCheckpoint(f"the variable {name!r} is missing.")
        value = self.variables.pop(name)
        if not isinstance(value, (np.ndarray, np.floating)) or value.dtype.kind != "f":
            raise UnsupportedTFCheckpoint(f"the variable {name!r} is not an array of floats.")
        return torch.from_numpy(np.array(value, dtype=np.float32))

    def conv(self, name):  # [kh, kw, in, out] -> [out, in, kh, kw]
        return self.take(name).permute(3, 2, 0, 1).contiguous()

    def dense(self, name):  # [in, out] -> [out, in]
        return self.take(name).t().contiguous()

    def check_all_used(self):
        if self.variables:
            names = sorted(self.variables)
            raise UnsupportedTFCheckpoint(f"the network has variables we do not know: {', '.join(names[:4])}"
                                          f"{' ...' if len(names) > 4 else ''}.")


def _mapping_state(v, settings):
    state = {"mapping.w_avg": v.take("dlatent_avg")}
    if settings["label_size"]:
        state["mapping.label_embedding"] = v.take("mapping/LabelConcat/weight")
    for i in range(settings["mapping_layers"]):
        state[f"mapping.fc{i}.weight"] = v.dense(f"mapping/Dense{i}/weight")
        state[f"mapping.fc{i}.bias"] = v.take(f"mapping/Dense{i}/bias")
    return state


def _stylegan1(kwargs, variables):
    s = _settings(kwargs, STYLEGAN1_DEFAULTS, STYLEGAN1_FIXED)
    fused_from = {"auto": 128, True: 8, False: None}.get(s["fused_scale"], "?")
    if fused_from == "?":
        raise UnsupportedTFCheckpoint(f"unknown fused_scale {s['fused_scale']!r}.")
    config = dict(z_dim=s["latent_size"], c_dim=s["label_size"], w_dim=s["dlatent_size"],
                  img_resolution=s["resolution"], img_channels=s["num_channels"],
                  mapping_kwargs=dict(num_layers=s["mapping_layers"], layer_features=s["mapping_fmaps"],
                                      lr_multiplier=s["mapping_lrmul"]),
                  channel_base=2 * s["fmap_base"], channel_max=s["fmap_max"], fused_from=fused_from)
    v = _Variables(variables)
    state = _mapping_state(v, s)
    state["synthesis.const"] = v.take("synthesis/4x4/Const/const")[0]
    log2 = int(math.log2(s["resolution"]))
    scopes = ["4x4/Const", "4x4/Conv"] + [f"{2 ** i}x{2 ** i}/{conv}" for i in range(3, log2 + 1)
                                          for conv in ("Conv0_up", "Conv1")]
    for i, scope in enumerate(scopes):
        prefix, scope = f"synthesis.layers.{i}.", "synthesis/" + scope
        if i > 0:
            state[prefix + "weight"] = v.conv(scope + "/weight")
        state[prefix + "noise_strength"] = v.take(scope + "/Noise/weight")
        state[prefix + "bias"] = v.take(scope + "/bias")
        state[prefix + "affine.weight"] = v.dense(scope + "/StyleMod/weight")
        state[prefix + "affine.bias"] = v.take(scope + "/StyleMod/bias")
        state[prefix + "noise_const"] = v.take(f"synthesis/noise{i}")[0, 0]
    state["synthesis.torgb.weight"] = v.conv("synthesis/ToRGB_lod0/weight")
    state["synthesis.torgb.bias"] = v.take("synthesis/ToRGB_lod0/bias")
    for lod in range(1, log2 - 1):  # the lower resolutions' outputs, used only while growing
        v.variables.pop(f"synthesis/ToRGB_lod{lod}/weight", None)
        v.variables.pop(f"synthesis/ToRGB_lod{lod}/bias", None)
    v.check_all_used()
    return config, _complete(stylegan1.Generator, config, state)


def _stylegan2(kwargs, variables):
    s = _settings(kwargs, STYLEGAN2_DEFAULTS, STYLEGAN2_FIXED)
    if s["architecture"] not in ("orig", "skip", "resnet"):
        raise UnsupportedTFCheckpoint(f"unknown architecture {s['architecture']!r}.")
    config = dict(z_dim=s["latent_size"], c_dim=s["label_size"], w_dim=s["dlatent_size"],
                  img_resolution=s["resolution"], img_channels=s["num_channels"],
                  mapping_kwargs=dict(num_layers=s["mapping_layers"], layer_features=s["mapping_fmaps"],
                                      lr_multiplier=s["mapping_lrmul"], label_concat=True),
                  channel_base=2 * s["fmap_base"], channel_max=s["fmap_max"], architecture=s["architecture"],
                  resample_filter=s["resample_kernel"])
    if s["fmap_min"] > min(2 * s["fmap_base"] // s["resolution"], s["fmap_max"]):
        raise UnsupportedTFCheckpoint(f"fmap_min={s['fmap_min']} raises the channel count, which we do not support.")
    v = _Variables(variables)
    state = _mapping_state(v, s)
    state["synthesis.b4.const"] = v.take("synthesis/4x4/Const/const")[0]
    log2 = int(math.log2(s["resolution"]))
    for i in range(2, log2 + 1):
        res = 2 ** i
        block, scope = f"synthesis.b{res}.", f"synthesis/{res}x{res}/"
        convs = [("conv1", "Conv")] if res == 4 else [("conv0", "Conv0_up"), ("conv1", "Conv1")]
        for ours, theirs in convs:
            weight = v.conv(scope + theirs + "/weight")
            # TensorFlow's upsampling convolution flips its kernel; ours does not.
            state[block + ours + ".weight"] = weight.flip([2, 3]) if ours == "conv0" else weight
            _modulation(v, state, block + ours, scope + theirs)
            state[block + ours + ".noise_strength"] = v.take(scope + theirs + "/noise_strength")
        if s["architecture"] == "skip" or res == s["resolution"]:
            state[block + "torgb.weight"] = v.conv(scope + "ToRGB/weight")
            _modulation(v, state, block + "torgb", scope + "ToRGB")
        if s["architecture"] == "resnet" and res > 4:
            state[block + "skip.weight"] = v.conv(scope + "Skip/weight")
    for i in range(2 * log2 - 3):  # noise i drives conv layer i: 4x4, then two per resolution
        layer = "b4.conv1" if i == 0 else f"b{2 ** ((i + 5) // 2)}.conv{1 - i % 2}"
        state[f"synthesis.{layer}.noise_const"] = v.take(f"synthesis/noise{i}")[0, 0]
    v.check_all_used()
    return config, _complete(stylegan2.Generator, config, state)


def _modulation(v, state, ours, theirs):
    state[ours + ".affine.weight"] = v.dense(theirs + "/mod_weight")
    state[ours + ".affine.bias"] = v.take(theirs + "/mod_bias") + 1  # TensorFlow adds the 1 at run time
    state[ours + ".bias"] = v.take(theirs + "/bias")


def _complete(generator_class, config, state):
    """Add the buffers that follow from the configuration: the resampling filters."""
    try:
        with torch.device("meta"):  # only the names are needed
            names = list(generator_class(**config).state_dict())
    except (TypeError, ValueError) as e:
        raise UnsupportedTFCheckpoint(f"unsupported configuration ({e}).") from None
    for name in names:
        if name.endswith("resample_filter"):
            state[name] = fir_filter_2d(config["resample_filter"])
    return state
