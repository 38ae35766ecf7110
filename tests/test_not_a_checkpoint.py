"""A file that is not a checkpoint gives one sentence: '<file> is not a StyleGAN checkpoint (<why>).'

Found by a new user who typed checkpoints/README.md as the model and got 'KeyError: 35' (the
pickle reader's lookup of the opcode '#'). Whatever the suffix, the loader looks at the bytes.
"""

import io
import json
import os
import pickle
import random
import re
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

import stylegan
from conftest import ROOT

TEXT = "# Offline faces\n\nA small StyleGAN2 generator — 64×64 faces.\n\n| file | what |\n| --- | --- |\n"
RANDOM = random.Random(0).randbytes(4096)


def _png():
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def _zip(members):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buffer.getvalue()


def _npz():
    buffer = io.BytesIO()
    np.savez(buffer, a=np.zeros(3, np.float32))
    return buffer.getvalue()


def _safetensors(tmp_path, tensors, metadata=None):
    path = tmp_path / "made.safetensors.tmp"
    save_file(tensors, str(path), metadata=metadata)
    return path.read_bytes()


# (file name, its bytes from tmp_path): none of them is a checkpoint.
FILES = {
    "README.md": lambda tmp: TEXT.encode(),
    "notes.pkl": lambda tmp: TEXT.encode(),
    "notes.safetensors": lambda tmp: TEXT.encode(),
    "notes.pt": lambda tmp: b"hello world\n",
    "latin1.txt": lambda tmp: "caf\xe9 cr\xe8me\n".encode("latin-1") * 20,
    "utf16.txt": lambda tmp: TEXT.encode("utf-16"),
    "settings.json": lambda tmp: json.dumps({"seeds": [1, 2], "psi": 0.7}).encode(),
    "empty.pkl": lambda tmp: b"",
    "empty.safetensors": lambda tmp: b"",
    "empty": lambda tmp: b"",
    "one-byte.pkl": lambda tmp: b"\x80",
    "faces.png": lambda tmp: _png(),
    "faces.pkl": lambda tmp: _png(),
    "random.pkl": lambda tmp: RANDOM,
    "random.safetensors": lambda tmp: RANDOM,
    "random.bin": lambda tmp: RANDOM,
    "archive.zip": lambda tmp: _zip({"notes.txt": TEXT}),
    "archive.pkl": lambda tmp: _zip({"notes.txt": TEXT}),
    "damaged.zip": lambda tmp: _zip({"notes.txt": TEXT})[:40],
    "arrays.npz": lambda tmp: _npz(),
    "dict.pkl": lambda tmp: pickle.dumps({"weights": [1, 2, 3]}, protocol=4),
    "dict-protocol0.pkl": lambda tmp: pickle.dumps({"weights": [1, 2, 3]}, protocol=0),
    "list.pkl": lambda tmp: pickle.dumps([1, 2, 3], protocol=2),
    "tuple.pkl": lambda tmp: pickle.dumps((1, 2, 3), protocol=4),
    "none.pkl": lambda tmp: pickle.dumps(None, protocol=5),
    "string.pkl": lambda tmp: pickle.dumps("G_ema", protocol=3),
    "g-ema-number.pkl": lambda tmp: pickle.dumps({"G_ema": 5}, protocol=4),
    "foreign.safetensors": lambda tmp: _safetensors(tmp, {"w": torch.zeros(2)}),
    "foreign-metadata.safetensors": lambda tmp: _safetensors(tmp, {"w": torch.zeros(2)}, {"format": "pt"}),
    "no-tensors.safetensors": lambda tmp: _safetensors(tmp, {}),
}

REPO_FILES = [path for path in (ROOT / "checkpoints" / "README.md", ROOT / "checkpoints" / "offline-faces-64.json",
                                ROOT / "checkpoints" / "samples.png") if path.is_file()]
BUG_SHAPED = re.compile(r"KeyError|IndexError|struct\.error|UnicodeDecodeError|EOFError|AttributeError|TypeError|"
                        r"Traceback|\x1b")


def assert_not_a_checkpoint(path):
    with pytest.raises(stylegan.LoadError) as e:
        stylegan.load(path, device="cpu")
    message = str(e.value)
    assert message.startswith(str(path)), message
    assert "is not a StyleGAN checkpoint" in message, message
    assert re.fullmatch(re.escape(str(path)) + r" is not a StyleGAN checkpoint \(.+\)\.", message), message
    assert "\n" not in message and not BUG_SHAPED.search(message), message
    return message


@pytest.mark.parametrize("name", list(FILES))
def test_files_that_are_not_checkpoints(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(FILES[name](tmp_path))
    assert_not_a_checkpoint(path)


@pytest.mark.parametrize("path", REPO_FILES, ids=[p.name for p in REPO_FILES])
def test_the_repositorys_own_files(path):
    assert_not_a_checkpoint(path)


@pytest.mark.parametrize("name, reason", [
    ("README.md", "text file"), ("notes.pkl", "text file"), ("empty.pkl", "empty"), ("faces.pkl", "PNG image"),
    ("random.safetensors", "not a pickle or safetensors file"), ("archive.pkl", "zip archive"),
    ("dict.pkl", "a pickle of a dict"), ("list.pkl", "a pickle of a list"),
    ("foreign.safetensors", "not written by `python -m stylegan convert`"),
])
def test_the_reason_says_what_the_file_is(tmp_path, name, reason):
    path = tmp_path / name
    path.write_bytes(FILES[name](tmp_path))
    assert reason in assert_not_a_checkpoint(path)


def test_text_that_reads_as_a_pickle_instruction_is_a_text_file(tmp_path, monkeypatch):
    # Protocol-0 pickles are text too: a text file whose lines read as a pickle's GLOBAL opcode
    # is still called a text file, not "refused, asks to run ...".
    marker = tmp_path / "pwned"
    monkeypatch.setenv("STYLEGAN_PWN_MARKER", str(marker))
    path = tmp_path / "list.txt"
    path.write_text("cats\ndogs\nbirds\n")
    assert "text file" in assert_not_a_checkpoint(path)
    assert not marker.exists()


def test_a_pytorch_archive_is_named(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"w": torch.zeros(2)}, path)
    with pytest.raises(stylegan.LoadError, match=r"weights\.pt.*PyTorch") as e:
        stylegan.load(path, device="cpu")
    assert "\n" not in str(e.value) and not BUG_SHAPED.search(str(e.value))


def test_the_cli_says_one_line(tmp_path):
    path = "checkpoints/README.md"
    if not (ROOT / path).is_file():
        path = str(tmp_path / "README.md")
        (tmp_path / "README.md").write_text(TEXT)
    result = subprocess.run([sys.executable, "-m", "stylegan", "info", path], cwd=ROOT, capture_output=True,
                            text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert re.fullmatch(r"error: " + re.escape(path) + r" is not a StyleGAN checkpoint \(.+\)\.\n", result.stderr), \
        result.stderr
    assert "Traceback" not in result.stderr and "KeyError" not in result.stderr
    assert result.stdout == ""
