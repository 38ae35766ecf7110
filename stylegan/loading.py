"""stylegan.load(): NVIDIA pickles (read safely), our safetensors files, and hf:// Hub paths."""

import ctypes
import functools
import hashlib
import json
import os
import platform
import socket
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import torch

from . import stylegan1, stylegan2, stylegan3, tf_checkpoints
from .safe_pickle import Record, RefusedGlobal, read_pickle

FAMILIES = {"stylegan1": stylegan1.Generator, "stylegan2": stylegan2.Generator, "stylegan3": stylegan3.Generator}
FORMAT_TAG = "stylegan-generator"
BUNDLED_MODEL = Path(__file__).resolve().parent.parent / "checkpoints" / "offline-faces-64.safetensors"


class LoadError(Exception):
    """A checkpoint could not be loaded; the message is one sentence meant for people."""


def brief(error, limit=160):
    """An exception as one short line, for the end of a sentence (library messages can run to pages)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = f"{type(error).__name__}: {lines[0] if lines else ''}".rstrip(": ")
    return text if len(text) <= limit else text[:limit - 3] + "..."


def default_device():
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@functools.cache  # platform.libc_ver() reads the Python executable
def _glibc():
    """The C library when it is glibc (whose malloc the two functions below tune), else None."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    return ctypes.CDLL(None)


def reuse_freed_memory():
    """Keep freed memory in this process for the next allocation instead of handing it back to
    the system (Linux with glibc; elsewhere nothing changes). Returns whether it did.

    On a CPU, synthesis allocates and frees feature maps of tens of MB in every layer. glibc
    returns each such block to the system at once and maps fresh pages for the next one, so
    every layer pays page faults and zeroing: 1.6 GB of them per 1024 px image, about a quarter
    of its time. The price of reusing: the resident memory stays near its peak.
    """
    libc = _glibc()
    if libc is None:
        return False
    m_trim_threshold, m_mmap_max, m_arena_max = -1, -4, -8  # from glibc's malloc.h
    libc.mallopt(m_mmap_max, 0)  # large blocks come from the heap, where freed ones are reused,
    libc.mallopt(m_trim_threshold, 2 ** 31 - 1)  # which is not shrunk,
    # and threads (the app computes in worker threads) share it: their own arenas cannot hold
    # blocks larger than 64 MB and would map them afresh after all.
    libc.mallopt(m_arena_max, 1)
    return True


def release_freed_memory():
    """Give freed memory back to the system now (glibc's malloc_trim; elsewhere nothing). The app
    does this after each request: a server handling images of varying sizes would otherwise
    keep the memory of its largest request."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


def load(source=None, device=None):
    """Load a generator: a .pkl or .safetensors path, 'hf://owner/repo/file[@revision]' or an http(s) URL.

    With no source, the bundled offline model. Returns the generator in eval mode on `device`
    (default: CUDA, then MPS, then CPU), with `.source` and `.sha256` describing the file.
    """
    path = resolve(source)
    family, config, state = read_checkpoint(path)
    G = build(family, config, state, path)
    G.source = str(source) if source is not None else "bundled"
    G.sha256 = file_sha256(path)
    device = torch.device(device) if device is not None else default_device()
    if device.type == "cpu":
        reuse_freed_memory()
    return G.to(device)


def resolve(source):
    """The local file for a source, downloading hf:// paths into the Hugging Face cache."""
    if source is None:
        if not BUNDLED_MODEL.exists():
            raise LoadError(f"The bundled model {BUNDLED_MODEL} is missing; give a checkpoint path or hf:// name.")
        return BUNDLED_MODEL
    source = str(source)
    if source.startswith("hf://"):
        return download_from_hub(source)
    if source.startswith(("https://", "http://")):
        return download_url(source)
    path = Path(source).expanduser()
    if not path.is_file():
        raise LoadError(f"{source}: no such checkpoint file.")
    return path


def parse_hub_url(url):
    """'hf://owner/repo/dir/file.pkl@rev' -> ('owner/repo', 'dir/file.pkl', 'rev' or None)."""
    rest = url[len("hf://"):]
    revision = None
    if "@" in rest:
        rest, revision = rest.rsplit("@", 1)
    parts = rest.split("/")
    if len(parts) < 3 or not all(parts) or revision == "":
        raise LoadError(f"{url}: a Hub path looks like hf://owner/repo/file.pkl (optionally @revision).")
    return "/".join(parts[:2]), "/".join(parts[2:]), revision


def hub_reachable(timeout=2.0):
    """Whether the Hub's host accepts connections: checked first, because huggingface_hub
    retries an unreachable host for about 20 s before falling back to its cache."""
    from huggingface_hub import constants
    if constants.HF_HUB_OFFLINE:
        return False
    endpoint = urllib.parse.urlsplit(constants.ENDPOINT)
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        socket.create_connection((endpoint.hostname, port), timeout=timeout).close()
        return True
    except OSError:
        return False


def download_from_hub(url):
    import huggingface_hub
    repo_id, filename, revision = parse_hub_url(url)
    try:
        return Path(huggingface_hub.hf_hub_download(repo_id, filename, revision=revision,
                                                    local_files_only=not hub_reachable()))
    except huggingface_hub.errors.LocalEntryNotFoundError:
        raise LoadError(f"{url}: the Hugging Face Hub cannot be reached and the file is not in the local cache.") from None
    except huggingface_hub.errors.EntryNotFoundError:
        raise LoadError(f"{url}: the repository has no file {filename!r}.") from None
    except huggingface_hub.errors.RepositoryNotFoundError:
        raise LoadError(f"{url}: no such Hub repository {repo_id!r} (or it is private).") from None
    except huggingface_hub.errors.RevisionNotFoundError:
        raise LoadError(f"{url}: the repository has no revision {revision!r}.") from None
    except Exception as e:  # network failures come in many types; all mean the same to the user
        raise LoadError(f"{url}: the download failed ({brief(e)}).") from None


def url_cache_dir():
    return Path(os.environ.get("STYLEGAN_CACHE", Path.home() / ".cache" / "stylegan")) / "downloads"


def download_url(url, timeout=30):
    """A checkpoint from a plain URL, downloaded once into url_cache_dir() (kept there, used offline)."""
    name = Path(urllib.parse.urlsplit(url).path).name
    if not name.endswith((".pkl", ".safetensors")):
        raise LoadError(f"{url}: a checkpoint URL must end in .pkl or .safetensors.")
    path = url_cache_dir() / hashlib.sha256(url.encode()).hexdigest()[:16] / name
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as f:
            expected = response.headers.get("Content-Length")
            while chunk := response.read(1 << 20):
                f.write(chunk)
            if expected is not None and f.tell() != int(expected):
                raise OSError(f"got {f.tell()} of {expected} bytes")
        os.replace(tmp, path)
    except urllib.error.HTTPError as e:
        raise LoadError(f"{url}: the server answered {e.code} {e.reason}.") from None
    except Exception as e:  # connection refused, timeouts, broken transfers, a full disk
        raise LoadError(f"{url}: the download failed ({brief(e)}).") from None
    finally:
        tmp.unlink(missing_ok=True)
    return path


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_checkpoint(path):
    """(family, constructor config, state dict) from a checkpoint file, without running its code."""
    path = Path(path)
    if path.suffix == ".safetensors":
        return read_safetensors(path)
    try:
        with open(path, "rb") as f:
            data = read_pickle(f)
    except RefusedGlobal as e:
        raise LoadError(f"{path}: refused, the file asks to run {e.qualname}, which no checkpoint needs "
                        "(see ALLOWED_GLOBALS in stylegan/safe_pickle.py).") from None
    except MemoryError:
        raise LoadError(f"{path}: the file is not a readable checkpoint (it claims more memory than there is).") from None
    except Exception as e:
        raise LoadError(f"{path}: the file is not a readable checkpoint, it may be truncated or corrupt "
                        f"({brief(e)}).") from None
    if isinstance(data, tuple):
        try:
            return tf_checkpoints.from_tf_networks(data)
        except tf_checkpoints.UnsupportedTFCheckpoint as e:
            raise LoadError(f"{path}: {e}") from None
        except Exception as e:
            raise LoadError(f"{path}: the TensorFlow network's records are malformed "
                            f"({brief(e)}).") from None
    generator = data.get("G_ema") if isinstance(data, dict) else data
    if not isinstance(generator, Record):
        raise LoadError(f"{path}: no generator found (expected a dict with 'G_ema', as NVIDIA's training writes).")
    try:
        return _generator_from_record(generator)
    except LoadError as e:
        raise LoadError(f"{path}: {e}") from None
    except Exception as e:
        raise LoadError(f"{path}: the generator's records are malformed ({brief(e)}).") from None


def _generator_from_record(record):
    modules = record.state.get("_modules", {})
    synthesis = modules.get("synthesis")
    if not isinstance(synthesis, Record) or not isinstance(modules.get("mapping"), Record):
        raise LoadError(f"the {record.class_name!r} object has no mapping and synthesis networks.")
    synthesis_modules = synthesis.state.get("_modules", {})
    if "input" in synthesis_modules:
        family = "stylegan3"
    elif "b4" in synthesis_modules:
        family = "stylegan2"
    else:
        raise LoadError(f"unknown generator architecture (synthesis layers {list(synthesis_modules)[:3]}).")
    config = _constructor_kwargs(record.state)
    return family, config, _flat_state_dict(record)


def _constructor_kwargs(state):
    names = ["z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs", "synthesis_kwargs"]
    kwargs = dict(zip(names, state.get("_init_args", ()) or ()))
    kwargs.update(state.get("_init_kwargs", {}) or {})
    kwargs.update(kwargs.pop("synthesis_kwargs", None) or {})  # stylegan2-ada nests these
    return _plain(kwargs)


def _plain(value):
    """Constructor arguments as JSON-able Python values (numpy scalars and EasyDicts become plain)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and hasattr(value, "dtype"):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise LoadError(f"unexpected constructor argument of type {type(value).__name__}.")


def _flat_state_dict(record, prefix=""):
    state = {}
    skip = record.state.get("_non_persistent_buffers_set") or set()
    for group in ("_parameters", "_buffers"):
        for name, tensor in (record.state.get(group) or {}).items():
            if tensor is not None and name not in skip:
                state[prefix + name] = tensor
    for name, child in (record.state.get("_modules") or {}).items():
        if isinstance(child, Record):
            state.update(_flat_state_dict(child, prefix + name + "."))
    return state


def read_safetensors(path):
    from safetensors import SafetensorError, safe_open
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            state = {key: f.get_tensor(key) for key in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise LoadError(f"{path}: not a readable safetensors file ({e}).") from None
    if metadata.get("format") != FORMAT_TAG or metadata.get("family") not in FAMILIES:
        raise LoadError(f"{path}: this safetensors file was not written by `python -m stylegan convert`.")
    try:
        config = json.loads(metadata["config"])
    except (KeyError, ValueError):
        raise LoadError(f"{path}: the architecture record in the file's metadata is missing or damaged.") from None
    return metadata["family"], config, state


def build(family, config, state, path="checkpoint"):
    try:
        G = FAMILIES[family](**config)
    except (TypeError, ValueError, KeyError) as e:
        raise LoadError(f"{path}: unsupported {family} configuration ({e}).") from None
    state = {k: v.to(torch.float32) if v.is_floating_point() else v for k, v in state.items()}
    try:
        G.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[1:2] or [str(e)]
        raise LoadError(f"{path}: the weights do not fit the {family} architecture ({first[0].strip()}).") from None
    return G.eval().requires_grad_(False)


def save_safetensors(G, path):
    """Write G in our own format: the weights, and the constructor config in the metadata."""
    from safetensors import SafetensorError
    from safetensors.torch import save_file
    path = Path(path)
    metadata = {"format": FORMAT_TAG, "family": G.family, "config": json.dumps(G.config)}
    state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in G.state_dict().items()}
    tmp = path.with_name(path.name + ".partial")
    try:
        save_file(state, str(tmp), metadata=metadata)
        os.replace(tmp, path)
    except SafetensorError as e:  # safetensors reports file-system failures in its own type
        raise OSError(str(e)) from None
    finally:
        tmp.unlink(missing_ok=True)
    return path
