"""A pickle reader that builds data, never code.

NVIDIA's checkpoints are pickles of "persistent objects": each network records its own
Python source and a constructor call. Their loader executes that source; we do not. The
unpickler below resolves only the globals in ALLOWED_GLOBALS, turns every network into a
plain `Record` (class name + state), and reads tensor storages through torch's
weights-only loader. Anything else is refused.
"""

import collections
import io
import pickle
import re
import struct
import threading
import warnings

import numpy as np
import torch


class Record:
    """A network (or other object) from a checkpoint, as plain data: its class name and state."""

    def __init__(self, class_name, state=None):
        self.class_name = class_name
        self.state = state if state is not None else {}

    def __setstate__(self, state):  # pickle's BUILD for objects made from an allowed class
        self.state = state

    def __repr__(self):
        return f"Record({self.class_name!r})"


def _persistent_record(meta):
    # torch_utils.persistence._reconstruct_persistent_obj(meta): meta['module_src'] is code
    # that NVIDIA's loader runs; we keep only the class name and the state.
    if not isinstance(meta, dict) or meta.get("type") != "class":
        raise pickle.UnpicklingError("persistent object without a class record")
    return Record(str(meta.get("class_name")), meta.get("state"))


def _tf_network():
    # dnnlib.tflib.network.Network: created empty, then given its state by BUILD.
    return Record("Network")


class _TFNetworkClass:
    def __new__(cls, *args):
        return _tf_network()


def _refusal(error, inside):
    """The RefusedGlobal that torch's weights-only reader words as a page of advice, or None."""
    refused = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(error))
    if not refused:
        return None
    module, _, name = refused.group(1).rpartition(".")
    return RefusedGlobal(module, name, inside=inside)


def _storage_from_bytes(data):
    # torch.storage._load_from_bytes: the bytes are a torch.save payload of one storage.
    if not isinstance(data, (bytes, bytearray)):
        raise pickle.UnpicklingError("tensor storage is not bytes")
    try:
        with warnings.catch_warnings():  # a damaged payload's oddities are reported as our error, not as warnings
            warnings.simplefilter("ignore")
            storage = torch.load(io.BytesIO(bytes(data)), weights_only=True, map_location="cpu")
    except MemoryError:
        raise
    except Exception as e:
        # torch's weights-only reader refuses globals with a page of advice; we name the global.
        refused = _refusal(e, "a tensor's stored data")
        if refused:
            raise refused from None
        raise pickle.UnpicklingError("a tensor's stored data is damaged") from None
    if not isinstance(storage, (torch.UntypedStorage, torch.storage.TypedStorage)):
        raise pickle.UnpicklingError("tensor storage payload holds something else")
    return storage


def _rebuild_tensor(storage, offset, size, stride, *rest):
    if not isinstance(storage, (torch.UntypedStorage, torch.storage.TypedStorage)):
        raise pickle.UnpicklingError("tensor without a storage")
    try:
        return torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, collections.OrderedDict())
    except (RuntimeError, TypeError, ValueError, OverflowError):
        raise pickle.UnpicklingError("a tensor's shape does not fit its stored data") from None


def _rebuild_parameter(data, requires_grad, *rest):
    if not isinstance(data, torch.Tensor):
        raise pickle.UnpicklingError("parameter without a tensor")
    return data


def _numpy_reconstruct(subtype, shape, dtype):
    if subtype is not np.ndarray:
        raise pickle.UnpicklingError("numpy subclass")
    return np.ndarray(shape, dtype=_numpy_dtype(dtype))


def _numpy_scalar(dtype, data=None):
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise pickle.UnpicklingError("numpy scalar of object type")
    if not isinstance(data, (bytes, bytearray)):
        raise pickle.UnpicklingError("numpy scalar without its bytes")
    return np.frombuffer(bytes(data), dtype=dtype, count=1)[0].copy()


def _numpy_dtype(name, align=False, copy=False):
    dtype = np.dtype(name)
    if dtype.hasobject:
        raise pickle.UnpicklingError("numpy object dtype")
    return dtype


# Every global a checkpoint may name, and what it becomes. Extend here, with harmless
# data constructors only.
ALLOWED_GLOBALS = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _persistent_record,
    ("dnnlib.tflib.network", "Network"): _TFNetworkClass,
    ("dnnlib.util", "EasyDict"): dict,
    ("dnnlib", "EasyDict"): dict,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _storage_from_bytes,
    ("numpy", "dtype"): _numpy_dtype,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
}


class RefusedGlobal(pickle.UnpicklingError):
    """A global outside ALLOWED_GLOBALS (`inside`: where, when not in the pickle itself)."""

    def __init__(self, module, name, inside=None):
        self.qualname = f"{module}.{name}" if module else name
        self.inside = inside
        super().__init__(self.qualname)


class _Opcodes(dict):
    """The pure-Python unpickler's table of opcodes; a byte that is none says so in words, where
    the table itself raised KeyError: 35 for the '#' that begins a Markdown file."""

    def __missing__(self, code):
        raise pickle.UnpicklingError(f"the byte {code:#04x} is not a pickle instruction")


class _SafeUnpickler(pickle._Unpickler):
    # The pure-Python unpickler: the C one sizes its memo table by an index read from the file,
    # so four damaged bytes made it allocate 21 GB (found by tests/test_hostile_input.py's fuzzer).
    # The time of a load goes into the tensor storages, so this costs little.
    dispatch = _Opcodes(pickle._Unpickler.dispatch)

    def find_class(self, module, name):
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise RefusedGlobal(module, name) from None

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("persistent ids are not used by checkpoints")


def read_pickle(file):
    """Unpickle a checkpoint from a binary file object, allowing only ALLOWED_GLOBALS.

    Raises RefusedGlobal for a global outside the list, MemoryError for data claiming more memory
    than there is, and pickle.UnpicklingError, with words for people, for anything else that
    goes wrong: the pure-Python unpickler reports damage as whatever its code ran into (EOFError,
    IndexError, struct.error, UnicodeDecodeError, a TypeError of an instruction applied to the
    wrong value...).
    """
    try:
        return _SafeUnpickler(file).load()
    except (pickle.UnpicklingError, MemoryError):
        raise
    except (EOFError, struct.error):
        raise pickle.UnpicklingError("the data ends too early") from None
    except IndexError:  # read(1)[0] at the end of the file, or an instruction with too few values before it
        raise pickle.UnpicklingError("the data ends too early or its instructions are out of order") from None
    except UnicodeError:
        raise pickle.UnpicklingError("a string in it is not valid text") from None
    except RecursionError:
        raise pickle.UnpicklingError("its data nests too deeply") from None
    except Exception:  # TypeError, ValueError, KeyError, AttributeError... from instructions that do not fit
        raise pickle.UnpicklingError("its instructions are damaged") from None


class Namespace(Record):
    """An argparse.Namespace (rosinality's training options) as plain data: torch's weights-only
    reader makes this instead, and gives it the Namespace's fields as its state. Nothing of
    argparse runs."""

    class_name = "argparse.Namespace"
    state = None


_TORCH_FILE_LOCK = threading.Lock()  # torch keeps its list of extra allowed globals in one global


def read_torch_file(path):
    """A torch.save file (zip or legacy), read by torch's weights-only reader: tensors, containers,
    numbers, strings, and argparse.Namespace as a `Namespace` record. Raises RefusedGlobal for
    anything else, pickle.UnpicklingError (in words) for damage, MemoryError and OSError."""
    allow = getattr(torch.serialization, "safe_globals", None)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if allow is None:  # torch before 2.5: files without a Namespace still load
                return torch.load(path, weights_only=True, map_location="cpu")
            with _TORCH_FILE_LOCK, allow([(Namespace, "argparse.Namespace")]):
                return torch.load(path, weights_only=True, map_location="cpu")
    except (MemoryError, OSError):
        raise
    except Exception as e:
        refused = _refusal(e, None)
        if refused:
            raise refused from None
        raise pickle.UnpicklingError("its data is damaged") from None
