"""Files the tasks write, for the command line and the app alike: PNGs that carry their recipe,
MP4s checked complete, W files in NVIDIA's layout, and every file written beside its final
name, then renamed into place, so that an error or a cancel never leaves a half-written file."""

import io
import json
import os
import secrets
import shutil
import struct
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin

from .settings import SettingsError

RECIPE_KEY = "stylegan-recipe"
IMAGE_KINDS = ("generate", "style_mix", "noise_study", "edit", "layers")  # recipes a PNG can carry


def temporary_beside(path):
    """A new temporary file name in path's folder (so the final rename is atomic)."""
    path = Path(path)
    if not path.parent.exists():
        raise SettingsError(f"Cannot write {path}: the folder {path.parent} does not exist.")
    if not path.parent.is_dir():
        raise SettingsError(f"Cannot write {path}: {path.parent} is a file, not a folder.")
    tmp = path.parent / f".{path.stem}.{secrets.token_hex(8)}{path.suffix}"
    try:
        # Not tempfile.mkstemp: its files are private (0600), and the rename would keep that.
        # Mode 0666 lets the umask decide, as for any file the user writes.
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except OSError as e:
        raise SettingsError(f"Cannot write {path}: {e.strerror}.") from None
    return str(tmp)


def write_beside(path, write):
    """write(tmp) fills a temporary file beside path, which is then renamed into place: the file
    appears only when complete, and a failure leaves nothing but one sentence."""
    tmp = temporary_beside(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise SettingsError(f"Cannot write {path}: {e.strerror or e}.") from None
    return Path(path)


def save_png(image, path, recipe=None):
    """Write image as PNG with its recipe (if any) in a text chunk; the file appears only when complete."""
    info = PngImagePlugin.PngInfo()
    if recipe is not None:
        info.add_text(RECIPE_KEY, json.dumps(recipe))
    info.add_text("Software", "stylegan-demo")
    return write_beside(path, lambda tmp: image.save(tmp, format="PNG", pnginfo=info))


def save_pngs(folder, files, raw=None):
    """files: {name: (image, recipe)}, and raw: {name: bytes}, written into folder all or none: first
    into a temporary folder beside it, then moved in."""
    folder = Path(folder)
    try:
        tmp = Path(tempfile.mkdtemp(prefix="." + folder.name + ".", dir=folder.parent))
    except OSError as e:
        raise SettingsError(f"Cannot write into {folder}: {e.strerror}.") from None
    try:
        for name, (image, recipe) in files.items():
            save_png(image, tmp / name, recipe)
        for name, data in (raw or {}).items():
            (tmp / name).write_bytes(data)
        names = [*files, *(raw or {})]
        if folder.exists():
            for name in names:
                os.replace(tmp / name, folder / name)
        else:
            os.rename(tmp, folder)
    except OSError as e:
        raise SettingsError(f"Cannot write into {folder}: {e.strerror or e}.") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return [folder / name for name in names]


def read_recipe(path):
    """The recipe a PNG of ours carries."""
    try:
        with Image.open(path) as im:
            text = im.text.get(RECIPE_KEY) if hasattr(im, "text") else None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise SettingsError(f"{path} is not a readable PNG.") from None
    if text is None:
        raise SettingsError(f"{path} carries no stylegan recipe.")
    try:
        recipe = json.loads(text)
    except ValueError:
        recipe = None
    kind = recipe.get("kind") if isinstance(recipe, dict) else None
    if not isinstance(kind, str) or kind not in IMAGE_KINDS:
        raise SettingsError(f"The recipe in {path} is damaged.")
    return recipe


def mp4_is_complete(path):
    """Whether the MP4's top-level boxes run exactly to the end of the file and include its index
    (moov). imageio does not report ffmpeg's exit status, so a write that failed half-way (a
    full disk) would otherwise pass for a video."""
    size, pos, kinds = os.path.getsize(path), 0, set()
    with open(path, "rb") as f:
        while pos < size:
            f.seek(pos)
            header = f.read(16)
            if len(header) < 8:
                return False
            box_size, kind = struct.unpack(">I4s", header[:8])
            if box_size == 1 and len(header) == 16:
                box_size = struct.unpack(">Q", header[8:])[0]
            elif box_size == 0:
                box_size = size - pos
            if box_size < 8:
                return False
            kinds.add(kind)
            pos += box_size
    return pos == size and {b"ftyp", b"moov", b"mdat"} <= kinds


# ----------------------------------------------------------------------------- arrays: W and directions files

MAX_ARRAY_BYTES = 64 * 2 ** 20  # what a W or directions file may hold, uncompressed


def save_arrays(path, **arrays):
    """An .npz of arrays (np.savez, uncompressed, as NVIDIA's projector writes its W), all or nothing."""
    def write(tmp):
        with open(tmp, "wb") as f:  # a file object: given a name, np.savez would add ".npz" to it
            np.savez(f, **arrays)
    return write_beside(path, write)


def read_arrays(path, keys, what):
    """{key: array} for those of keys that an .npz holds, or {keys[0]: array} of an .npy. Never
    unpickles; arrays declaring more than MAX_ARRAY_BYTES are refused before they are read.
    what: the kind of file expected, for the messages ("W", "directions")."""
    name = Path(path).name
    too_big = f"{name} declares more than {MAX_ARRAY_BYTES >> 20} MB of numbers; that is not a {what} file."
    try:
        with open(path, "rb") as f:
            head = f.read(6)
            if head == b"\x93NUMPY":
                f.seek(0)
                version = np.lib.format.read_magic(f)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, _, dtype = read_header(f)
                if np.prod(shape, dtype=np.float64) * dtype.itemsize > MAX_ARRAY_BYTES:
                    raise SettingsError(too_big)
                return {keys[0]: np.load(path, allow_pickle=False)}
        if head.startswith(b"PK"):
            with zipfile.ZipFile(path) as z:
                members = {Path(i.filename).stem for i in z.infolist()}
                if sum(i.file_size for i in z.infolist()) > MAX_ARRAY_BYTES:
                    raise SettingsError(too_big)
            with np.load(path, allow_pickle=False) as data:
                return {k: np.asarray(data[k]) for k in keys if k in members}
    except FileNotFoundError:
        raise SettingsError(f"{name} does not exist.") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as e:
        raise SettingsError(f"{name} cannot be read as a {what} file ({e}).") from None
    raise SettingsError(f"{name} is not a {what} file: those are NumPy files (.npz).")


def save_w(path, ws):
    """W file in NVIDIA's layout (that of its projector's projected_w.npz): key `w`, [N, num_ws, w_dim] float32."""
    data = w_file_bytes(ws)
    return write_beside(path, lambda tmp: Path(tmp).write_bytes(data))


def w_file_bytes(ws):
    """A W file's bytes (to hash before writing, or to write)."""
    ws = ws.detach().cpu().numpy() if hasattr(ws, "detach") else np.asarray(ws)
    buffer = io.BytesIO()
    np.savez(buffer, w=ws.astype(np.float32))
    return buffer.getvalue()


def read_w(path):
    """The ws [N, num_ws, w_dim] float32 of a W file, checked finite (the model's shape: settings.WFile)."""
    name = Path(path).name
    w = read_arrays(path, ("w",), "W").get("w")
    if w is None:
        raise SettingsError(f"{name} has no array 'w': W files are .npz files with 'w' of shape [N, num_ws, w_dim], "
                            "as NVIDIA's projector writes them.")
    if w.ndim != 3 or not w.shape[0] or not np.issubdtype(w.dtype, np.floating):
        raise SettingsError(f"The 'w' in {name} has shape {list(w.shape)} ({w.dtype}); W files hold floats of shape "
                            "[N, num_ws, w_dim].")
    if not np.isfinite(w).all():
        raise SettingsError(f"The 'w' in {name} contains NaN or infinite numbers.")
    return w.astype(np.float32)
