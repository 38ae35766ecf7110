"""Faces and their five landmarks in a photo (MTCNN), for aligning photos the way FFHQ was.

The detector is MTCNN (Zhang et al. 2016): three small networks run one after another.
P-Net slides over an image pyramid and proposes boxes, R-Net rejects most of them and
refines the rest, O-Net refines again and places five landmarks. The networks are written
here in PyTorch; their trained weights come with the `mtcnn` package from PyPI (MIT
licence), whose own code needs TensorFlow and is never imported: we only read its files.

Those files are joblib pickles. We never hand them to joblib or pickle unrestricted: the
reader below allows the three globals an array list needs and reads the array bytes that
joblib writes between pickle instructions itself.
"""

import dataclasses
import functools
import importlib.util
import math
import pickle
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .safe_pickle import RefusedGlobal

__all__ = ["Face", "detect_faces", "WeightsNotInstalled", "read_weights", "weights_dir"]

# Landmark rows of Face.landmarks, in MTCNN's order. "Left" is the viewer's left (smaller x).
LANDMARKS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")

# The three weight files hold 1.6 MB at most once decompressed; anything far larger is not them.
MAX_WEIGHTS_BYTES = 64 * 1024 * 1024

# dtypes a weight array may have; numpy.dtype gets its argument from the pickle, and this
# keeps object and structured dtypes (whose data would be more pickle) out.
_PLAIN_DTYPES = {"f2", "f4", "f8", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "b1"}


class WeightsNotInstalled(ImportError):
    """The mtcnn package, which carries the detector's weights, is missing."""


@dataclasses.dataclass(frozen=True)
class Face:
    """A face: its box (x0, y0, x1, y1; pixel edges, x1 and y1 exclusive), O-Net's score in
    [0, 1], and landmarks, a 5x2 array of (x, y) in pixel coordinates (pixel i's centre at
    i) in the order of LANDMARKS: left eye, right eye, nose, mouth left, mouth right, left
    and right as the viewer sees them."""

    box: tuple
    score: float
    landmarks: np.ndarray = dataclasses.field(compare=False)

    @property
    def size(self):
        return max(self.box[2] - self.box[0], self.box[3] - self.box[1])


# ---------------------------------------------------------------------------------------
# Reading the weights


def weights_dir():
    """The folder of the mtcnn package's weight files. Found without importing mtcnn: its
    __init__ imports TensorFlow."""
    spec = importlib.util.find_spec("mtcnn")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsNotInstalled("The face detector's weights come with the mtcnn package: pip install mtcnn")
    for location in spec.submodule_search_locations:
        folder = Path(location) / "assets" / "weights"
        if (folder / "onet.lz4").is_file():
            return folder
    raise WeightsNotInstalled("The face detector's weights come with the mtcnn package: pip install mtcnn")


class _Stream:
    """The decompressed bytes, readable only as pickle asks (read, readline).

    No peek method, on purpose: without one, pickle's C unpickler reads exactly what each
    instruction needs, so when BUILD completes an array wrapper the position is at the
    array bytes joblib wrote right after it. read_array checks that it is."""

    def __init__(self, data):
        self.bytes = bytes(data)
        self.data = memoryview(self.bytes)
        self.pos = 0

    def read(self, n=-1):
        end = len(self.data) if n is None or n < 0 else min(self.pos + n, len(self.data))
        chunk = self.data[self.pos:end].tobytes()
        self.pos = end
        return chunk

    def readline(self):
        end = self.bytes.find(b"\n", self.pos)
        return self.read(-1 if end < 0 else end + 1 - self.pos)


_NDARRAY = object()  # what numpy.ndarray resolves to: a value to compare against, never a callable


def _plain_dtype(spec, align=False, copy=True):
    # numpy.dtype as a pickle calls it (REDUCE with ('f4', False, True)); only simple scalars.
    if not isinstance(spec, str) or spec not in _PLAIN_DTYPES:
        raise pickle.UnpicklingError(f"weights: dtype {spec!r} is not a plain number type")
    # A copy, as numpy's own pickles ask: BUILD then sets its byte order, which numpy's shared
    # dtype singletons would silently ignore.
    return np.dtype(spec, copy=True)


class _WeightsUnpickler(pickle.Unpickler):
    """pickle's unpickler allowing three globals: joblib's NumpyArrayWrapper (replaced by a
    class of ours that reads the array bytes when pickle BUILDs it), numpy.ndarray (only as
    a marker) and numpy.dtype (only plain number types). Everything else is refused."""

    def __init__(self, stream):
        super().__init__(stream)
        self.stream = stream
        reader = self

        class ArrayWrapper:
            # joblib pickles this object, then writes the array's bytes; BUILD gives us the
            # state and we read the bytes before pickle reads its next instruction.
            def __setstate__(self, state):
                self.array = reader.read_array(state)

        self.wrapper_class = ArrayWrapper

    def find_class(self, module, name):
        if (module, name) == ("joblib.numpy_pickle", "NumpyArrayWrapper"):
            return self.wrapper_class
        if (module, name) == ("numpy", "ndarray"):
            return _NDARRAY
        if (module, name) == ("numpy", "dtype"):
            return _plain_dtype
        raise RefusedGlobal(module, name)

    def read_array(self, state):
        # joblib's NumpyArrayWrapper.read_array, for plain numeric arrays only: one byte giving
        # a padding length, that many 0xff bytes (aligning the data to 16 bytes), the data.
        known = {"subclass", "shape", "order", "dtype", "allow_mmap", "numpy_array_alignment_bytes"}
        needed = {"subclass", "shape", "order", "dtype"}
        if not isinstance(state, dict) or not needed <= set(state) <= known:
            raise pickle.UnpicklingError("weights: an array record without the fields joblib writes")
        shape, order, dtype = state["shape"], state["order"], state["dtype"]
        if state["subclass"] is not _NDARRAY:
            raise pickle.UnpicklingError("weights: an array of another class than numpy.ndarray")
        if not isinstance(shape, tuple) or not all(type(n) is int and n >= 0 for n in shape):
            raise pickle.UnpicklingError("weights: an array's shape is not a tuple of sizes")
        if order not in ("C", "F"):
            raise pickle.UnpicklingError("weights: an array's order is neither C nor F")
        # BUILD ran dtype.__setstate__ with data from the file; check what it made.
        if (not isinstance(dtype, np.dtype) or dtype.kind not in "fiub" or dtype.hasobject
                or dtype.fields is not None or dtype.subdtype is not None):
            raise pickle.UnpicklingError("weights: an array's dtype is not a plain number type")
        stream = self.stream
        alignment = state.get("numpy_array_alignment_bytes")
        if alignment is not None:
            if type(alignment) is not int or not 1 <= alignment <= 255:
                raise pickle.UnpicklingError("weights: odd array alignment")
            padding = stream.read(1)
            length = padding[0] if padding else -1
            if length < 0 or stream.read(length) != b"\xff" * length or stream.pos % alignment:
                # Also what we would see had pickle read past the wrapper into the array bytes.
                raise pickle.UnpicklingError("weights: array data not where joblib puts it")
        count = math.prod(shape)
        nbytes = count * dtype.itemsize
        if nbytes > len(stream.data) - stream.pos:
            raise pickle.UnpicklingError("weights: an array longer than the file")
        array = np.frombuffer(stream.read(nbytes), dtype=dtype, count=count)
        array = array.reshape(shape[::-1]).T if order == "F" else array.reshape(shape)
        # A writable copy in native byte order, free of the decompressed buffer.
        return np.array(array, dtype=dtype.newbyteorder("="), order="C", copy=True)


def read_weights(path):
    """The list of arrays in one of mtcnn's .lz4 files (an LZ4 frame around a joblib pickle),
    read without running anything the file names."""
    import lz4.frame  # a dependency of mtcnn itself, so present wherever the weights are

    raw = Path(path).read_bytes()
    decompressor = lz4.frame.LZ4FrameDecompressor()
    try:
        data = decompressor.decompress(raw, max_length=MAX_WEIGHTS_BYTES)
    except RuntimeError as e:
        raise pickle.UnpicklingError(f"weights: {Path(path).name} is not an LZ4 frame ({e})") from None
    if not decompressor.eof:
        raise pickle.UnpicklingError(f"weights: {Path(path).name} is not a whole LZ4 frame, or larger than expected")
    return unpickle_arrays(data)


def unpickle_arrays(data):
    """A list of numpy arrays from joblib's pickle format (uncompressed bytes)."""
    stream = _Stream(data)
    unpickler = _WeightsUnpickler(stream)
    try:
        result = unpickler.load()
    except pickle.UnpicklingError:
        raise
    except (EOFError, TypeError, ValueError, AttributeError, IndexError, KeyError, OverflowError) as e:
        raise pickle.UnpicklingError(f"weights: not a list of arrays ({type(e).__name__}: {e})") from None
    if stream.pos != len(stream.data):
        raise pickle.UnpicklingError("weights: bytes left after the pickle")
    if not isinstance(result, list) or not all(isinstance(item, unpickler.wrapper_class) for item in result):
        raise pickle.UnpicklingError("weights: not a list of arrays")
    return [item.array for item in result]


# ---------------------------------------------------------------------------------------
# The networks, as TensorFlow/Keras laid them out in mtcnn/network/*.py


def _max_pool_same(x, kernel, stride):
    # Keras MaxPooling2D(padding="same"): ceil(n / stride) outputs, the padding split with
    # any odd pixel at the end; padded values never win the max.
    pads = []
    for n in (x.shape[-1], x.shape[-2]):
        out = -(-n // stride)
        total = max((out - 1) * stride + kernel - n, 0)
        pads += [total // 2, total - total // 2]
    return F.max_pool2d(F.pad(x, pads, value=-math.inf), kernel, stride)


class _Weights:
    """Keras arrays handed out in the order Keras's get_weights lists them."""

    def __init__(self, arrays):
        self.arrays = list(arrays)

    def take(self, *shape):
        if not self.arrays:
            raise ValueError("weights: fewer arrays than the network has")
        array = self.arrays.pop(0)
        if array.shape != shape:
            raise ValueError(f"weights: expected an array of shape {shape}, found {array.shape}")
        return torch.from_numpy(np.array(array, dtype=np.float32))


def _conv(weights, c_in, c_out, k):
    conv = torch.nn.Conv2d(c_in, c_out, k)
    # Keras kernels are (height, width, in, out); torch's (out, in, height, width).
    conv.weight.data = weights.take(k, k, c_in, c_out).permute(3, 2, 0, 1).contiguous()
    conv.bias.data = weights.take(c_out)
    return conv


def _prelu(weights, c, shared_spatial=True):
    prelu = torch.nn.PReLU(c)
    # Keras PReLU(shared_axes=[1, 2]) keeps one slope per channel, shaped (1, 1, C).
    prelu.weight.data = weights.take(*((1, 1, c) if shared_spatial else (c,))).reshape(c)
    return prelu


def _dense(weights, n_in, n_out, after_map=None):
    linear = torch.nn.Linear(n_in, n_out)
    kernel = weights.take(n_in, n_out)
    if after_map is not None:
        # Keras flattened an NHWC map after Permute((2, 1, 3)), so the kernel's rows run over
        # (x, y, channel), x slowest. Our map is NCHW and flattens as (channel, y, x):
        # reorder the rows once here, and the plain flatten gives Keras's results.
        c, h, w = after_map
        kernel = kernel.reshape(w, h, c, n_out).permute(3, 2, 1, 0).reshape(n_out, n_in)
    else:
        kernel = kernel.T
    linear.weight.data = kernel.contiguous()
    linear.bias.data = weights.take(n_out)
    return linear


def _finished(weights):
    if weights.arrays:
        raise ValueError(f"weights: {len(weights.arrays)} arrays more than the network has")


class PNet(torch.nn.Module):
    """Proposal network: fully convolutional, one 12x12 window per output pixel, stride 2."""

    def __init__(self, arrays):
        super().__init__()
        w = _Weights(arrays)
        self.conv1, self.prelu1 = _conv(w, 3, 10, 3), _prelu(w, 10)
        self.conv2, self.prelu2 = _conv(w, 10, 16, 3), _prelu(w, 16)
        self.conv3, self.prelu3 = _conv(w, 16, 32, 3), _prelu(w, 32)
        self.box, self.face = _conv(w, 32, 4, 1), _conv(w, 32, 2, 1)
        _finished(w)

    def forward(self, x):
        x = _max_pool_same(self.prelu1(self.conv1(x)), 2, 2)
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.box(x), torch.softmax(self.face(x), dim=1)[:, 1]


class RNet(torch.nn.Module):
    """Refinement network: 24x24 crops to a face probability and a box correction."""

    def __init__(self, arrays):
        super().__init__()
        w = _Weights(arrays)
        self.conv1, self.prelu1 = _conv(w, 3, 28, 3), _prelu(w, 28)
        self.conv2, self.prelu2 = _conv(w, 28, 48, 3), _prelu(w, 48)
        self.conv3, self.prelu3 = _conv(w, 48, 64, 2), _prelu(w, 64)
        self.fc4, self.prelu4 = _dense(w, 576, 128, after_map=(64, 3, 3)), _prelu(w, 128, False)
        self.box, self.face = _dense(w, 128, 4), _dense(w, 128, 2)
        _finished(w)

    def features(self, x):
        x = _max_pool_same(self.prelu1(self.conv1(x)), 3, 2)
        x = F.max_pool2d(self.prelu2(self.conv2(x)), 3, 2)  # Keras padding="valid"
        return self.prelu3(self.conv3(x))

    def forward(self, x):
        x = self.prelu4(self.fc4(self.features(x).flatten(1)))
        return self.box(x), torch.softmax(self.face(x), dim=1)[:, 1]


class ONet(torch.nn.Module):
    """Output network: 48x48 crops to a face probability, a box correction and landmarks."""

    def __init__(self, arrays):
        super().__init__()
        w = _Weights(arrays)
        self.conv1, self.prelu1 = _conv(w, 3, 32, 3), _prelu(w, 32)
        self.conv2, self.prelu2 = _conv(w, 32, 64, 3), _prelu(w, 64)
        self.conv3, self.prelu3 = _conv(w, 64, 64, 3), _prelu(w, 64)
        self.conv4, self.prelu4 = _conv(w, 64, 128, 2), _prelu(w, 128)
        self.fc5, self.prelu5 = _dense(w, 1152, 256, after_map=(128, 3, 3)), _prelu(w, 256, False)
        self.box, self.landmarks, self.face = _dense(w, 256, 4), _dense(w, 256, 10), _dense(w, 256, 2)
        _finished(w)

    def features(self, x):
        x = _max_pool_same(self.prelu1(self.conv1(x)), 3, 2)
        x = F.max_pool2d(self.prelu2(self.conv2(x)), 3, 2)  # Keras padding="valid"
        x = _max_pool_same(self.prelu3(self.conv3(x)), 2, 2)
        return self.prelu4(self.conv4(x))

    def forward(self, x):
        x = self.prelu5(self.fc5(self.features(x).flatten(1)))
        return self.box(x), self.landmarks(x), torch.softmax(self.face(x), dim=1)[:, 1]


@functools.lru_cache(maxsize=1)
def networks():
    """P-Net, R-Net and O-Net with the mtcnn package's weights (read once)."""
    folder = weights_dir()
    nets = (PNet(read_weights(folder / "pnet.lz4")), RNet(read_weights(folder / "rnet.lz4")),
            ONet(read_weights(folder / "onet.lz4")))
    for net in nets:
        net.eval().requires_grad_(False)
    return nets


# ---------------------------------------------------------------------------------------
# The pipeline. Boxes are float arrays (N, 4) of pixel edges x0, y0, x1, y1.


def _nms(boxes, scores, threshold, mode="union"):
    """Indices of the boxes kept by greedy non-maximum suppression, best first. "min" divides
    the overlap by the smaller box, as MTCNN's last stage does, so a box inside a larger one
    goes too."""
    order = np.argsort(-scores, kind="stable")
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        w = np.clip(np.minimum(boxes[i, 2], boxes[rest, 2]) - np.maximum(boxes[i, 0], boxes[rest, 0]), 0, None)
        h = np.clip(np.minimum(boxes[i, 3], boxes[rest, 3]) - np.maximum(boxes[i, 1], boxes[rest, 1]), 0, None)
        overlap = w * h
        if mode == "min":
            overlap = overlap / np.maximum(np.minimum(areas[i], areas[rest]), 1e-9)
        else:
            overlap = overlap / np.maximum(areas[i] + areas[rest] - overlap, 1e-9)
        order = rest[overlap <= threshold]
    return np.asarray(keep, dtype=np.int64)


def _regress(boxes, offsets):
    # The networks predict each edge's shift as a fraction of the box's width or height.
    size = np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]] * 2, axis=1)
    return boxes + offsets * size


def _square(boxes):
    # R-Net and O-Net see square crops; grow the short side about the centre.
    side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    return np.stack([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], axis=1)


class _Crops:
    """Crops of square boxes resized to a network's input size.

    A box is sampled bilinearly from the level of a halving pyramid where it is at most twice
    the output size, so that shrinking a big face to 24 or 48 pixels averages its pixels
    instead of skipping most of them. Outside the photo is black, as in the original MTCNN's crops."""

    def __init__(self, pixels):
        self.levels = [pixels]  # (1, 3, H, W), values 0..255
        while min(self.levels[-1].shape[-2:]) >= 96:
            self.levels.append(F.avg_pool2d(self.levels[-1], 2))

    def __call__(self, boxes, size):
        out = torch.zeros(len(boxes), 3, size, size)
        sides = np.maximum(boxes[:, 2] - boxes[:, 0], 1e-6)
        level_of = np.clip(np.floor(np.log2(np.maximum(sides / size, 1))), 0, len(self.levels) - 1).astype(int)
        steps = (torch.arange(size, dtype=torch.float64) + 0.5) / size
        for level in np.unique(level_of):
            picked = np.flatnonzero(level_of == level)
            image = self.levels[level]
            h, w = image.shape[-2:]
            b = torch.from_numpy(boxes[picked]) / 2.0 ** level
            # Sample centres in pixel-edge units, then in grid_sample's [-1, 1] over the image.
            xs = b[:, 0:1] + steps[None] * (b[:, 2:3] - b[:, 0:1])
            ys = b[:, 1:2] + steps[None] * (b[:, 3:4] - b[:, 1:2])
            grid = torch.stack([
                (2 * xs / w - 1)[:, None, :].expand(-1, size, -1),
                (2 * ys / h - 1)[:, :, None].expand(-1, -1, size)], dim=-1).float()
            sampled = F.grid_sample(image.expand(len(picked), -1, -1, -1), grid, mode="bilinear",
                                    padding_mode="zeros", align_corners=False)
            out[torch.from_numpy(picked)] = sampled
        return (out - 127.5) / 128  # MTCNN's input scaling


def _pyramid_scales(height, width, min_face_size, factor=0.709):
    # P-Net's window is 12 pixels: the first scale maps min_face_size onto it, each next
    # one shrinks by `factor` until the image is smaller than the window.
    scales, scale = [], 12.0 / min_face_size
    while min(height, width) * scale >= 12:
        scales.append(scale)
        scale *= factor
    return scales


def _proposals(pnet, normalized, min_face_size, threshold):
    height, width = normalized.shape[-2:]
    all_boxes, all_offsets, all_scores = [], [], []
    for scale in _pyramid_scales(height, width, min_face_size):
        h, w = max(math.ceil(height * scale), 12), max(math.ceil(width * scale), 12)
        scaled = F.interpolate(normalized, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
        offsets, prob = pnet(scaled)
        ys, xs = torch.nonzero(prob[0] > threshold, as_tuple=True)
        if not len(ys):
            continue
        # Output pixel (y, x) saw the 12x12 window at (2x, 2y) of the scaled image.
        sx, sy = w / width, h / height
        xs, ys = xs.numpy().astype(np.float64), ys.numpy().astype(np.float64)
        boxes = np.stack([2 * xs / sx, 2 * ys / sy, (2 * xs + 12) / sx, (2 * ys + 12) / sy], axis=1)
        scores = prob[0, ys.astype(int), xs.astype(int)].numpy().astype(np.float64)
        offsets = offsets[0, :, ys.astype(int), xs.astype(int)].T.numpy().astype(np.float64)
        keep = _nms(boxes, scores, 0.5)
        all_boxes.append(boxes[keep]), all_offsets.append(offsets[keep]), all_scores.append(scores[keep])
    if not all_boxes:
        return np.zeros((0, 4))
    boxes, offsets, scores = (np.concatenate(a) for a in (all_boxes, all_offsets, all_scores))
    keep = _nms(boxes, scores, 0.7)
    return _square(_regress(boxes[keep], offsets[keep]))


def _batched(net, crops, batch=256):
    # Many R-Net candidates on a busy photo; batches keep memory flat.
    parts = [net(crops[i:i + batch]) for i in range(0, len(crops), batch)]
    return [torch.cat(p).numpy().astype(np.float64) for p in zip(*parts)]


@torch.inference_mode()
def detect_faces(image, min_face_size=20, thresholds=(0.6, 0.7, 0.8), max_side=1280):
    """The faces in a PIL image, largest first.

    min_face_size: the smallest face looked for, in pixels of the (possibly reduced) photo.
    thresholds: P-Net's, R-Net's and O-Net's probabilities a face must pass (MTCNN's defaults).
    max_side: photos larger than this are reduced to it first (time grows with pixels);
    boxes and landmarks are given in the original photo's pixels all the same.
    """
    pnet, rnet, onet = networks()
    image = image.convert("RGB")  # MTCNN was trained on RGB; grey, RGBA and palettes become RGB
    width, height = image.size
    reduce = max(width, height) / max_side if max(width, height) > max_side else 1.0
    if reduce > 1:
        image = image.resize((max(round(width / reduce), 1), max(round(height / reduce), 1)), Image.BOX)
    # The actual factors after rounding, per axis, to scale results back exactly.
    fx, fy = width / image.size[0], height / image.size[1]
    pixels = torch.from_numpy(np.asarray(image, dtype=np.float32).copy()).permute(2, 0, 1)[None]
    if min(pixels.shape[-2:]) < 12:
        return []

    boxes = _proposals(pnet, (pixels - 127.5) / 128, min_face_size, thresholds[0])
    crops = _Crops(pixels)
    if len(boxes):
        offsets, scores = _batched(rnet, crops(boxes, 24))
        keep = scores > thresholds[1]
        boxes, offsets, scores = boxes[keep], offsets[keep], scores[keep]
        keep = _nms(boxes, scores, 0.7)
        boxes = _square(_regress(boxes[keep], offsets[keep]))
    faces = []
    if len(boxes):
        offsets, marks, scores = _batched(onet, crops(boxes, 48))
        keep = scores > thresholds[2]
        boxes, offsets, marks, scores = boxes[keep], offsets[keep], marks[keep], scores[keep]
        # Landmarks are fractions of the box O-Net saw: x0..x4 then y0..y4, measured from the
        # box's edge; pixel i's centre is at edge i + 0.5. (Without the half pixel, landmarks
        # in a mirrored photo came out 0.6 px off the mirrored landmarks, at every face size.)
        side = (boxes[:, 2] - boxes[:, 0])[:, None]
        xs = boxes[:, 0:1] + marks[:, :5] * side - 0.5
        ys = boxes[:, 1:2] + marks[:, 5:] * side - 0.5
        boxes = _regress(boxes, offsets)
        keep = _nms(boxes, scores, 0.7, mode="min")
        for i in keep:
            # Pixel centres scale about the image's corner at -0.5, edges about 0.
            landmarks = np.stack([(xs[i] + 0.5) * fx - 0.5, (ys[i] + 0.5) * fy - 0.5], axis=1)
            landmarks.setflags(write=False)  # Face is frozen; so are its landmarks
            box = tuple(float(v) for v in boxes[i] * [fx, fy, fx, fy])
            faces.append(Face(box=box, score=float(scores[i]), landmarks=landmarks))
    faces.sort(key=lambda face: -face.size)
    return faces
