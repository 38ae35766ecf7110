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


def _storage_from_bytes(data):
    # torch.storage._load_from_bytes: the bytes are a torch.save payload of one storage.
    if not isinstance(data, (bytes, bytearray)):
        raise pickle.UnpicklingError("tensor storage is not bytes")
    with warnings.catch_warnings():  # a damaged payload's oddities are reported as our error, not as warnings
        warnings.simplefilter("ignore")
        storage = torch.load(io.BytesIO(bytes(data)), weights_only=True, map_location="cpu")
    if not isinstance(storage, (torch.UntypedStorage, torch.storage.TypedStorage)):
        raise pickle.UnpicklingError("tensor storage payload holds something else")
    return storage


def _rebuild_tensor(storage, offset, size, stride, *rest):
    if not isinstance(storage, (torch.UntypedStorage, torch.storage.TypedStorage)):
        raise pickle.UnpicklingError("tensor without a storage")
    return torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, collections.OrderedDict())


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
    def __init__(self, module, name):
        super().__init__(f"{module}.{name}")
        self.qualname = f"{module}.{name}"


class _SafeUnpickler(pickle._Unpickler):
    # The pure-Python unpickler: the C one sizes its memo table by an index read from the file,
    # so four damaged bytes made it allocate 21 GB (found by tests/test_hostile_input.py's fuzzer).
    # The time of a load goes into the tensor storages, so this costs little.
    def find_class(self, module, name):
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise RefusedGlobal(module, name) from None

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("persistent ids are not used by checkpoints")


def read_pickle(file):
    """Unpickle a checkpoint from a binary file object, allowing only ALLOWED_GLOBALS."""
    return _SafeUnpickler(file).load()
