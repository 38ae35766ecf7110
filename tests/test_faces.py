"""Face detection (stylegan.faces): MTCNN in PyTorch on the mtcnn package's weights, on a real photo."""

import io
import math
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from stylegan import faces
from stylegan.safe_pickle import RefusedGlobal

pytestmark = pytest.mark.usefixtures("one_thread")

PHOTO = Path(__file__).parent / "photos" / "astronaut.png"  # 256x256, NASA, public domain

# Read off the photo by eye at 16x zoom (pixel coordinates, pixel i's centre at i): the
# middle of each iris and the corners where the lips meet.
LEFT_EYE, RIGHT_EYE = (101.0, 50.5), (123.5, 51.0)
MOUTH_LEFT, MOUTH_RIGHT = (102.5, 70.0), (120.5, 71.0)


@pytest.fixture(scope="module")
def photo():
    return Image.open(PHOTO).convert("RGB")


@pytest.fixture(scope="module")
def face(photo):
    found = faces.detect_faces(photo)
    assert len(found) == 1
    return found[0]


def test_one_face_with_landmarks_where_a_person_puts_them(face):
    assert face.score > 0.9
    left_eye, right_eye, nose, mouth_left, mouth_right = face.landmarks
    assert np.hypot(*(left_eye - LEFT_EYE)) < 3
    assert np.hypot(*(right_eye - RIGHT_EYE)) < 3
    # MTCNN's mouth corners sit a little outside the lips' meeting points (the smile's crease).
    assert np.hypot(*(mouth_left - MOUTH_LEFT)) < 4
    assert np.hypot(*(mouth_right - MOUTH_RIGHT)) < 4
    # Left and right as the viewer sees them; eyes above the nose, the mouth below it.
    assert left_eye[0] < nose[0] < right_eye[0]
    assert mouth_left[0] < nose[0] < mouth_right[0]
    assert max(left_eye[1], right_eye[1]) + 5 < nose[1] < min(mouth_left[1], mouth_right[1])
    x0, y0, x1, y1 = face.box
    assert x0 < face.landmarks[:, 0].min() and face.landmarks[:, 0].max() < x1
    assert y0 < face.landmarks[:, 1].min() and face.landmarks[:, 1].max() < y1
    assert face.landmarks.shape == (5, 2) and not face.landmarks.flags.writeable


def _rotate_points(points, degrees, width, height):
    # PIL's rotate turns the picture counter-clockwise about its centre (pixel edges w/2, h/2).
    a = math.radians(degrees)
    dx, dy = points[:, 0] + 0.5 - width / 2, points[:, 1] + 0.5 - height / 2
    x = width / 2 + dx * math.cos(a) + dy * math.sin(a)
    y = height / 2 - dx * math.sin(a) + dy * math.cos(a)
    return np.stack([x - 0.5, y - 0.5], axis=1)


def test_rotated_and_mirrored_photo_moves_the_landmarks_along(photo, face):
    width, height = photo.size
    turned = photo.rotate(20, resample=Image.BICUBIC, fillcolor=(128, 128, 128))
    mirrored = turned.transpose(Image.FLIP_LEFT_RIGHT)
    found = faces.detect_faces(mirrored)
    assert len(found) == 1 and found[0].score > 0.9
    expected = _rotate_points(face.landmarks, 20, width, height)
    expected[:, 0] = width - 1 - expected[:, 0]
    # In the mirror the viewer's left eye is the other eye, and so for the mouth's corners.
    expected = expected[[1, 0, 2, 4, 3]]
    assert np.abs(found[0].landmarks - expected).max() < 3


def test_a_large_photo_is_reduced_and_answers_in_its_own_pixels(photo, face):
    large = photo.resize((2048, 2048), Image.BICUBIC)
    found = faces.detect_faces(large)
    assert len(found) == 1
    # 8x the 256-pixel answer (pixel centres scale about the corner at -0.5), within a
    # 256-pixel pixel: both are found at about the same size after the reduction to 1280.
    expected = (face.landmarks + 0.5) * 8 - 0.5
    assert np.abs(found[0].landmarks - expected).max() < 8
    assert np.abs(np.array(found[0].box) - np.array(face.box) * 8).max() < 24


def test_no_face_in_blank_noise_or_tiny_images():
    assert faces.detect_faces(Image.new("RGB", (256, 256), (128, 128, 128))) == []
    noise = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    assert faces.detect_faces(Image.fromarray(noise)) == []
    assert faces.detect_faces(Image.new("L", (8, 8))) == []


def test_weights_are_keras_arrays():
    pnet = faces.read_weights(faces.weights_dir() / "pnet.lz4")
    assert [a.shape for a in pnet[:3]] == [(3, 3, 3, 10), (10,), (1, 1, 10)]
    assert all(a.dtype == np.float32 and a.flags.c_contiguous for a in pnet)


@pytest.mark.parametrize("net_index, dense_name, map_shape", [(1, "fc4", (64, 3, 3)), (2, "fc5", (128, 3, 3))])
def test_dense_layer_after_the_maps_equals_keras_order(net_index, dense_name, map_shape):
    # Keras: NHWC map, Permute((2, 1, 3)), Flatten, then the kernel as stored in the file.
    name = ("pnet", "rnet", "onet")[net_index]
    arrays = faces.read_weights(faces.weights_dir() / f"{name}.lz4")
    kernel_index = {"rnet": 9, "onet": 12}[name]
    kernel, bias = (torch.from_numpy(a) for a in arrays[kernel_index:kernel_index + 2])
    net = faces.networks()[net_index]
    size = 24 if name == "rnet" else 48
    maps = net.features(torch.randn(4, 3, size, size, generator=torch.Generator().manual_seed(0)))
    assert maps.shape[1:] == map_shape
    keras = maps.permute(0, 3, 2, 1).reshape(4, -1) @ kernel + bias
    torch.testing.assert_close(getattr(net, dense_name)(maps.flatten(1)), keras, rtol=1e-5, atol=1e-5)


def _joblib_bytes(value):
    joblib = pytest.importorskip("joblib")  # mtcnn's own dependency, used only to write test files
    buffer = io.BytesIO()
    joblib.dump(value, buffer)
    return buffer.getvalue()


def test_reads_what_joblib_writes(tmp_path):
    joblib = pytest.importorskip("joblib")
    arrays = [np.arange(12, dtype=np.float32).reshape(3, 4), np.asfortranarray(np.arange(6.0).reshape(2, 3)),
              np.arange(5, dtype=">i4"), np.zeros((0, 3), np.uint8)]
    for got, want in zip(faces.unpickle_arrays(_joblib_bytes(arrays)), arrays, strict=True):
        np.testing.assert_array_equal(got, want)
        assert got.dtype == want.dtype.newbyteorder("=")
    joblib.dump(arrays, tmp_path / "w.lz4", compress="lz4")  # the weight files' own form
    assert len(faces.read_weights(tmp_path / "w.lz4")) == 4


class _OpensAFile:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_pickle_naming_another_global_is_refused(tmp_path):
    import lz4.frame
    marker = tmp_path / "opened"
    for protocol in (0, 2, 4):  # GLOBAL (a line of text) and STACK_GLOBAL both ask find_class
        crafted = pickle.dumps([_OpensAFile(str(marker))], protocol=protocol)
        with pytest.raises(RefusedGlobal, match=r"\bopen\b"):
            faces.unpickle_arrays(crafted)
    (tmp_path / "evil.lz4").write_bytes(lz4.frame.compress(crafted))
    with pytest.raises(RefusedGlobal):
        faces.read_weights(tmp_path / "evil.lz4")
    assert not marker.exists()
    # numpy's own array pickles go through numpy._core.multiarray._reconstruct: refused too;
    # the only arrays read are joblib's, whose bytes we read ourselves.
    with pytest.raises(RefusedGlobal, match="_reconstruct"):
        faces.unpickle_arrays(pickle.dumps([np.zeros(3)], protocol=4))


def test_object_arrays_and_damaged_files_are_refused(tmp_path):
    with pytest.raises(pickle.UnpicklingError, match="dtype"):
        faces.unpickle_arrays(_joblib_bytes([np.array([print], dtype=object)]))
    good = _joblib_bytes([np.arange(100, dtype=np.float32)])
    with pytest.raises(pickle.UnpicklingError):
        faces.unpickle_arrays(good[:-8])  # array cut short
    with pytest.raises(pickle.UnpicklingError, match="left after"):
        faces.unpickle_arrays(good + b"\0")
    (tmp_path / "not.lz4").write_bytes(b"hello")
    with pytest.raises(pickle.UnpicklingError, match="LZ4"):
        faces.read_weights(tmp_path / "not.lz4")


def test_without_the_mtcnn_package_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mtcnn", None)  # Python's way of marking a module absent
    with pytest.raises(faces.WeightsNotInstalled, match="pip install mtcnn"):
        faces.weights_dir()


def test_two_faces_come_largest_first(photo, face):
    collage = Image.new("RGB", (384, 256), (200, 200, 200))
    collage.paste(photo.resize((128, 128), Image.LANCZOS), (0, 64))
    collage.paste(photo, (128, 0))
    found = faces.detect_faces(collage)
    assert len(found) == 2 and found[0].size > 1.5 * found[1].size
    np.testing.assert_allclose(found[0].landmarks, face.landmarks + [128, 0], atol=1.5)
    assert found[1].landmarks[:, 0].max() < 128
