"""stylegan.load(): NVIDIA pickles (read safely), our safetensors files, and hf:// Hub paths."""

import codecs
import ctypes
import functools
import hashlib
import json
import os
import pickle
import platform
import re
import socket
import struct
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import torch

from . import rosinality, stylegan1, stylegan2, stylegan3, tf_checkpoints
from .safe_pickle import Record, RefusedGlobal, read_pickle, read_torch_file

FAMILIES = {"stylegan1": stylegan1.Generator, "stylegan2": stylegan2.Generator, "stylegan3": stylegan3.Generator}
FORMAT_TAG = "stylegan-generator"
STORED_W_AVG = "the w_avg stored in the file"
CHECKPOINT_SUFFIXES = (".pkl", ".pt", ".safetensors")
# checkpoints/ of the repository: beside the package in a clone, inside it once installed (pyproject.toml).
_PACKAGE = Path(__file__).resolve().parent
CHECKPOINTS = _PACKAGE / "checkpoints" if (_PACKAGE / "checkpoints").is_dir() else _PACKAGE.parent / "checkpoints"
BUNDLED_MODEL = CHECKPOINTS / "offline-faces-64.safetensors"
CATALOG = CHECKPOINTS / "catalog.json"


class LoadError(Exception):
    """A checkpoint could not be loaded; the message is one sentence meant for people."""


def brief(error, limit=160, name=True):
    """An exception as one short line, for the end of a sentence (library messages can run to pages):
    its type's name and its message's first line, or (name=False) the message alone."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    first = lines[0] if lines else ""
    text = f"{type(error).__name__}: {first}".rstrip(": ") if name else first or type(error).__name__
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
    """Load a generator: a .pkl, .pt or .safetensors path, 'hf://owner/repo/file[@revision]' or an http(s) URL.

    With no source, the bundled offline model. Returns the generator in eval mode on `device`
    (default: CUDA, then MPS, then CPU), with `.source` and `.sha256` describing the file,
    `.checkpoint_format` naming its format and `.truncation_centre` saying where w_avg came from.
    """
    path = resolve(source)
    family, config, state, about = read_checkpoint(path)
    G = build(family, config, state, path)
    G.checkpoint_format = about["format"]
    G.truncation_centre = about.get("truncation_centre", STORED_W_AVG)
    G.source = str(source) if source is not None else "bundled"
    G.sha256 = file_sha256(path)
    device = torch.device(device) if device is not None else default_device()
    if device.type == "cpu":
        reuse_freed_memory()
    return G.to(device)


def resolve(source):
    """The local file for a source, downloading hf:// paths into the Hugging Face cache and URLs into
    url_cache_dir(). A source of a catalog entry falls back to the entry's other sources."""
    if source is None:
        if not BUNDLED_MODEL.exists():
            raise LoadError(f"The bundled model {BUNDLED_MODEL} is missing; give a checkpoint path or hf:// name.")
        return BUNDLED_MODEL
    source = str(source)
    if source.startswith(("hf://", "https://", "http://")):
        entry = catalog_entry(source)
        return download(source) if entry is None else download_catalog_entry(entry, source)
    path = Path(source).expanduser()
    if not path.is_file():
        raise LoadError(f"{source}: no such checkpoint file.")
    return path


def read_catalog(path=None):
    """The models the app offers: checkpoints/catalog.json, or the file $STYLEGAN_CATALOG names.

    Each entry has a name, its sources in the order to try them (each a url: hf://, https:// or
    'bundled', with the file's size and sha256 where known), family, resolution, licence and
    description; `source`, added here, is the first source's url.
    """
    path = Path(path or os.environ.get("STYLEGAN_CATALOG") or CATALOG)
    entries = json.loads(path.read_text())
    for entry in entries:
        entry["source"] = entry["sources"][0]["url"]
    return entries


def catalog_entry(source):
    """The catalog entry one of whose sources is `source`, or None."""
    return next((e for e in read_catalog() if any(s["url"] == source for s in e["sources"])), None)


def download(url):
    return download_from_hub(url) if url.startswith("hf://") else download_url(url)


def download_catalog_entry(entry, first):
    """A catalog model's file: from `first`, then from the entry's other sources in order, each checked
    against the size and sha256 the catalog gives (a file that differs is refused and not kept)."""
    sources = sorted(entry["sources"], key=lambda s: s["url"] != first)
    reasons = []
    for source in sources:
        try:
            return _checked(download(source["url"]), source)
        except LoadError as e:
            reasons.append(str(e).rstrip("."))
    if len(reasons) == 1:
        raise LoadError(reasons[0] + ".")
    raise LoadError(f"{entry['name']}: none of its {len(reasons)} sources gave the model ({'; '.join(reasons)}).")


def _checked(path, source):
    """The downloaded file, if its size and sha256 are those the catalog gives; else removed, and a LoadError."""
    size = path.stat().st_size
    problem = None
    if source.get("size") is not None and size != source["size"]:
        problem = f"the file has {size:,} bytes where the catalog says {source['size']:,}"
    elif source.get("sha256") and file_sha256(path) != source["sha256"].lower():
        problem = "the file's sha256 differs from the catalog's"
    if problem is None:
        return path
    target = path.resolve()  # the Hub's cache links its snapshot to a blob: remove both
    path.unlink(missing_ok=True)
    target.unlink(missing_ok=True)
    raise LoadError(f"{source['url']}: refused, {problem}; it was not kept.")


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
    if not name.endswith(CHECKPOINT_SUFFIXES):
        raise LoadError(f"{url}: a checkpoint URL must end in .pkl, .pt or .safetensors.")
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


def is_local(source):
    """Whether a source loads without the network: the bundled model, a file, or a download
    already in its cache."""
    source = str(source)
    if source in ("None", "bundled") or not source.startswith(("hf://", "http://", "https://")):
        return True
    entry = catalog_entry(source)  # a catalog model is local when any of its sources is
    return any(_is_downloaded(url) for url in ([s["url"] for s in entry["sources"]] if entry else [source]))


def _is_downloaded(source):
    if source == "bundled":
        return True
    if source.startswith("hf://"):
        import huggingface_hub
        repo_id, filename, revision = parse_hub_url(source)
        return isinstance(huggingface_hub.try_to_load_from_cache(repo_id, filename, revision=revision), str)
    name = Path(urllib.parse.urlsplit(source).path).name
    return (url_cache_dir() / hashlib.sha256(source.encode()).hexdigest()[:16] / name).is_file()


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


SNIFF_BYTES = 1 << 16  # what is read of a file to tell what it is
TORCH_MAGIC_NUMBER = 0x1950a86a20f9469cfc6c  # the first pickle of torch.save's legacy (non-zip) format
# Files people may give by mistake, by their first bytes.
FILE_SIGNATURES = [
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF-", "a PDF document"),
    (b"\x1f\x8b", "a gzip-compressed file"),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file"),
    (b"\x93NUMPY", "a NumPy array file"),
    (b"\x7fELF", "a program"),
]


def not_a_checkpoint(path, reason):
    """The error for a file that is something else: '<file> is not a StyleGAN checkpoint (<reason>).'"""
    return LoadError(f"{path} is not a StyleGAN checkpoint ({reason}).")


# Exceptions whose names and messages mean something only to a programmer ('KeyError: 35'):
# a file that makes the reading code raise one is described in words, without them.
BUG_SHAPED = (LookupError, AttributeError, TypeError, EOFError, struct.error, UnicodeError, AssertionError,
              NameError, RecursionError)


def _detail(error):
    """' (what went wrong)' for the end of a sentence, or nothing when those words would only confuse."""
    return "" if isinstance(error, BUG_SHAPED) else f" ({brief(error, name=False)})"


def read_checkpoint(path):
    """(family, constructor config, state dict, about) from a checkpoint file, without running its code;
    about: {"format": in words, "truncation_centre": where w_avg came from, when not the file}.

    What the file is comes from its bytes, not its name: NVIDIA's pickles (PyTorch snapshots and
    the TensorFlow-era (G, D, Gs) tuples), rosinality's torch.save files and our safetensors
    files are read; anything else is a LoadError that says what the file is instead.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(SNIFF_BYTES)
            size = os.fstat(f.fileno()).st_size
    except OSError as e:
        raise LoadError(f"{path}: the file cannot be read ({e.strerror or brief(e, name=False)}).") from None
    if not head:
        raise not_a_checkpoint(path, "it is empty, not a readable checkpoint")
    if _is_pickle(head):
        return _from_pickle(path, _read_pickle(path))
    if _is_safetensors(head, size):
        return read_safetensors(path)
    what = _file_kind(path, head)
    if what is TORCH_ZIP:
        return _from_torch_file(path)
    if what is not None:
        raise not_a_checkpoint(path, f"it is {what}, not a readable checkpoint")
    data = _read_other_pickle(path)  # pickles of protocols 0 and 1 start with any opcode
    if data is not _NOT_A_PICKLE:
        return _from_pickle(path, data)
    if _is_text(head, size):
        raise not_a_checkpoint(path, "it is a text file, not a readable checkpoint")
    raise not_a_checkpoint(path, "it is not a pickle or safetensors file, so not a readable checkpoint")


def _is_pickle(head):
    """Pickles of protocol 2 and later, as NVIDIA's and torch's are, begin with PROTO and its number."""
    return len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= pickle.HIGHEST_PROTOCOL


def _is_safetensors(head, size):
    """A safetensors file: the length of its JSON header (8 bytes, little-endian), then the header."""
    if len(head) < 10:
        return False
    header_length = int.from_bytes(head[:8], "little")
    return 2 <= header_length <= size - 8 and head[8:9] == b"{"


def _file_kind(path, head):
    """What a file that is neither pickle nor safetensors is, when its first bytes tell; else None."""
    for signature, what in FILE_SIGNATURES:
        if head.startswith(signature):
            return what
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "a WebP image"
    if head[4:8] == b"ftyp":
        return "a video file"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _zip_kind(path)
    return None


def _zip_kind(path):
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except Exception:  # BadZipFile, and whatever else a damaged directory makes zipfile raise
        return "a damaged zip archive"
    if any(name == "data.pkl" or name.endswith("/data.pkl") for name in names):
        return TORCH_ZIP
    if names and all(name.endswith(".npy") for name in names):
        return "a NumPy .npz archive"
    return "a zip archive"


TORCH_ZIP = "a PyTorch file"


def _from_torch_file(path):
    """A torch.save file: rosinality's checkpoints, read by torch's weights-only reader."""
    try:
        data = read_torch_file(path)
    except RefusedGlobal as e:
        raise LoadError(f"{path}: refused, the file asks to run {e.qualname}, which no checkpoint needs.") from None
    except MemoryError:
        raise LoadError(f"{path}: the file is not a readable checkpoint (it claims more memory than there is).") from None
    except OSError as e:
        raise LoadError(f"{path}: the file cannot be read ({e.strerror or brief(e, name=False)}).") from None
    except Exception:  # read_torch_file words damage as UnpicklingError
        raise LoadError(f"{path}: the file is not a readable checkpoint, it may be truncated or corrupt.") from None
    kind = rosinality.layout(data)
    if kind is None:
        raise LoadError(f"{path} is a PyTorch file (torch.save) with no generator in a layout we read: give "
                        "rosinality's .pt (with g_ema), NVIDIA's .pkl snapshot or a .safetensors file written by "
                        "`python -m stylegan convert`.")
    try:
        config, state, centre = rosinality.convert(data)
    except rosinality.RosinalityError as e:
        raise LoadError(f"{path}: not a readable rosinality checkpoint, {e}") from None
    except Exception as e:
        raise LoadError(f"{path}: the rosinality generator's weights are malformed{_detail(e)}.") from None
    return "stylegan2", config, state, {"format": f"rosinality stylegan2-pytorch .pt ({kind})",
                                        "truncation_centre": centre}


def _is_text(head, size):
    """Whether the first bytes are text: UTF-16 with its byte-order mark, or without NUL and
    control characters, in UTF-8 or (mostly ASCII) in a one-byte encoding such as Latin-1."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = head[:len(head) // 2 * 2].decode("utf-16")
        except UnicodeDecodeError:
            return False
        return sum(not (c.isprintable() or c.isspace()) for c in text) <= len(text) // 100
    if b"\x00" in head:
        return False
    controls = sum(head.count(bytes([c])) for c in CONTROL_BYTES)
    if controls > len(head) // 100:
        return False
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=len(head) >= size)
        return True
    except UnicodeDecodeError:
        return sum(c < 0x80 for c in head) >= 0.7 * len(head)


CONTROL_BYTES = [c for c in range(0x20) if chr(c) not in "\t\n\v\f\r\x1b"] + [0x7f]


def _read_pickle(path):
    try:
        with open(path, "rb") as f:
            return read_pickle(f)
    except RefusedGlobal as e:
        raise _refused(path, e) from None
    except MemoryError:
        raise LoadError(f"{path}: the file is not a readable checkpoint (it claims more memory than there is).") from None
    except OSError as e:
        raise LoadError(f"{path}: the file cannot be read ({e.strerror or brief(e, name=False)}).") from None
    except Exception as e:  # read_pickle words its errors as UnpicklingError
        raise LoadError(f"{path}: the file is not a readable checkpoint, it may be truncated or corrupt"
                        f"{_detail(e)}.") from None


def _refused(path, e):
    if e.inside:  # torch's weights-only reader refused it
        return LoadError(f"{path}: refused, {e.inside} in the file asks to run {e.qualname}, "
                         "which no checkpoint needs.")
    return LoadError(f"{path}: refused, the file asks to run {e.qualname}, which no checkpoint needs "
                     "(see ALLOWED_GLOBALS in stylegan/safe_pickle.py).")


_NOT_A_PICKLE = object()


def _read_other_pickle(path):
    """A file that does not begin like a pickle of protocol 2 or later may still be one of protocol 0
    (which is text) or 1: the data if the whole file is such a pickle, else _NOT_A_PICKLE. A
    refusal counts only when it reads as one (a dotted name, the file ending in STOP): the
    lines 'cats' and 'dogs' of a text file are GLOBAL 'ats.dogs' to an unpickler."""
    try:
        with open(path, "rb") as f:
            try:
                data = read_pickle(f)
            except RefusedGlobal as e:
                f.seek(-1, os.SEEK_END)
                if re.fullmatch(r"[A-Za-z_][\w.]*", e.qualname) and f.read(1) == b".":
                    raise _refused(path, e) from None
                return _NOT_A_PICKLE
            return data if f.read(1) == b"" else _NOT_A_PICKLE
    except LoadError:
        raise
    except Exception:  # not a pickle (MemoryError included: a damaged length)
        return _NOT_A_PICKLE


def _from_pickle(path, data):
    """The generator from an unpickled checkpoint, or what the pickle holds instead."""
    if isinstance(data, tuple) and any(isinstance(item, Record) for item in data):
        try:
            return (*tf_checkpoints.from_tf_networks(data), {"format": "NVIDIA TensorFlow pickle (Gs)"})
        except tf_checkpoints.UnsupportedTFCheckpoint as e:
            raise LoadError(f"{path}: {e}") from None
        except Exception as e:
            raise LoadError(f"{path}: the TensorFlow network's records are malformed{_detail(e)}.") from None
    generator = data.get("G_ema") if isinstance(data, dict) else data
    if isinstance(generator, Record):
        try:
            return (*_generator_from_record(generator), {"format": "NVIDIA PyTorch pickle (G_ema)"})
        except LoadError as e:
            raise LoadError(f"{path}: {e}") from None
        except Exception as e:
            raise LoadError(f"{path}: the generator's records are malformed{_detail(e)}.") from None
    if type(data) is int and data == TORCH_MAGIC_NUMBER:
        return _from_torch_file(path)
    if isinstance(data, dict):
        raise not_a_checkpoint(path, "it is a pickle of a dict with no generator in it; NVIDIA's snapshots "
                                     "keep it under 'G_ema'")
    raise not_a_checkpoint(path, f"it is a pickle of {_what(data)}, with no generator in it")


def _what(value):
    """A pickled value's kind in words."""
    kinds = [(bool, "a truth value"), ((int, float, complex), "a number"), (str, "a string"),
             ((bytes, bytearray), "bytes"), (list, "a list"), (tuple, "a tuple"), ((set, frozenset), "a set"),
             (torch.Tensor, "a tensor"), (np.ndarray, "a NumPy array"), (np.generic, "a number")]
    if value is None:
        return "None"
    for types, words in kinds:
        if isinstance(value, types):
            return words
    return "something else"


def _state(record):
    """A Record's state as a dict (a damaged file can give it any value)."""
    return record.state if isinstance(record.state, dict) else {}


def _mapping(value):
    return value if isinstance(value, dict) else {}


def _generator_from_record(record):
    modules = _mapping(_state(record).get("_modules"))
    synthesis = modules.get("synthesis")
    if not isinstance(synthesis, Record) or not isinstance(modules.get("mapping"), Record):
        raise LoadError(f"the {record.class_name!r} object has no mapping and synthesis networks.")
    synthesis_modules = _mapping(_state(synthesis).get("_modules"))
    if "input" in synthesis_modules:
        family = "stylegan3"
    elif "b4" in synthesis_modules:
        family = "stylegan2"
    else:
        raise LoadError(f"unknown generator architecture (synthesis layers {list(synthesis_modules)[:3]}).")
    config = _constructor_kwargs(_state(record))
    return family, config, _flat_state_dict(record)


def _constructor_kwargs(state):
    names = ["z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs", "synthesis_kwargs"]
    args, kwargs = state.get("_init_args") or (), state.get("_init_kwargs") or {}
    if not isinstance(args, (list, tuple)) or not isinstance(kwargs, dict):
        raise LoadError("the generator's constructor arguments are damaged.")
    kwargs = {**dict(zip(names, args)), **kwargs}
    nested = kwargs.pop("synthesis_kwargs", None) or {}  # stylegan2-ada nests these
    if not isinstance(nested, dict):
        raise LoadError("the generator's constructor arguments are damaged.")
    return _plain({**kwargs, **nested})


def _plain(value):
    """Constructor arguments as JSON-able Python values (numpy scalars and EasyDicts become plain)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and hasattr(value, "dtype"):  # numpy scalars
        try:
            return _plain(value.item())
        except (TypeError, ValueError, RuntimeError):  # an array of more than one value
            raise LoadError(f"unexpected constructor argument of type {type(value).__name__}.") from None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise LoadError(f"unexpected constructor argument of type {type(value).__name__}.")


def _flat_state_dict(record, prefix=""):
    state = {}
    record_state = _state(record)
    skip = record_state.get("_non_persistent_buffers_set") or set()
    for group in ("_parameters", "_buffers"):
        for name, tensor in _mapping(record_state.get(group)).items():
            if tensor is None or (isinstance(skip, (set, frozenset, list, tuple)) and name in skip):
                continue
            if not isinstance(name, str) or not isinstance(tensor, torch.Tensor):
                raise LoadError(f"the weight {prefix}{name} is not a tensor.")
            state[prefix + name] = tensor
    for name, child in _mapping(record_state.get("_modules")).items():
        if isinstance(child, Record):
            state.update(_flat_state_dict(child, f"{prefix}{name}."))
    return state


def read_safetensors(path):
    from safetensors import safe_open
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            ours = metadata.get("format") == FORMAT_TAG and metadata.get("family") in FAMILIES
            state = {key: f.get_tensor(key) for key in f.keys()} if ours else None
    except MemoryError:
        raise LoadError(f"{path}: not a readable safetensors file (it claims more memory than there is).") from None
    except Exception as e:  # SafetensorError for damage, OSError, and whatever else a damaged header brings
        raise LoadError(f"{path}: not a readable safetensors file, it may be truncated or corrupt"
                        f"{_detail(e)}.") from None
    if not ours:
        raise not_a_checkpoint(path, "it is a safetensors file not written by `python -m stylegan convert`")
    try:
        config = json.loads(metadata["config"])
    except (KeyError, ValueError):
        raise LoadError(f"{path}: the architecture record in the file's metadata is missing or damaged.") from None
    about = {"format": "safetensors (written by `python -m stylegan convert`)"}
    if metadata.get("truncation_centre"):
        about["truncation_centre"] = metadata["truncation_centre"]
    return metadata["family"], config, state, about


def build(family, config, state, path="checkpoint"):
    if not isinstance(config, dict):
        raise LoadError(f"{path}: the {family} configuration is damaged.")
    try:
        G = FAMILIES[family](**config)
    except MemoryError:
        raise LoadError(f"{path}: the {family} configuration asks for more memory than there is.") from None
    except Exception as e:  # the constructors check their arguments with TypeError and ValueError
        plain = isinstance(e, (TypeError, ValueError)) and not isinstance(e, UnicodeError)
        raise LoadError(f"{path}: unsupported {family} configuration{f' ({brief(e, name=False)})' if plain else ''}.") from None
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
    if getattr(G, "truncation_centre", STORED_W_AVG) != STORED_W_AVG:
        metadata["truncation_centre"] = G.truncation_centre  # stored now, but not chosen by the file's author
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
