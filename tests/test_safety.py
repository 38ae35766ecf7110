"""Loading never runs code from a checkpoint; bad files give LoadError with one plain sentence."""

import io
import os
import pickle

import pytest

import stylegan
from conftest import HOSTILE, REFERENCE, run_python


@pytest.fixture
def marker(tmp_path, monkeypatch):
    path = tmp_path / "pwned"
    monkeypatch.setenv("STYLEGAN_PWN_MARKER", str(path))
    return path


@pytest.mark.parametrize("name", ["malicious_exec", "malicious_system", "malicious_nested_storage"])
def test_malicious_fixtures_are_refused(name, marker):
    with pytest.raises(stylegan.LoadError) as e:
        stylegan.load(HOSTILE / f"{name}.pkl", device="cpu")
    assert f"{name}.pkl" in str(e.value)
    assert not marker.exists()


def test_refusal_names_the_global(marker):
    with pytest.raises(stylegan.LoadError, match=r"builtins\.exec"):
        stylegan.load(HOSTILE / "malicious_exec.pkl", device="cpu")
    with pytest.raises(stylegan.LoadError, match=r"(posix|os|nt)\.system"):
        stylegan.load(HOSTILE / "malicious_system.pkl", device="cpu")


class _Payload:
    """Pickles as a call of `func(*args)`: what an attacker's pickle asks the loader to do."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _write(tmp_path, obj, name="evil.pkl"):
    path = tmp_path / name
    path.write_bytes(pickle.dumps(obj, protocol=4))
    return path


@pytest.mark.parametrize("make", [
    lambda m: _Payload(os.system, f"touch {m}"),
    lambda m: _Payload(eval, f"open({str(m)!r}, 'w')"),
    lambda m: _Payload(open, str(m), "w"),
    lambda m: {"G_ema": _Payload(getattr, _Payload(__import__, "os"), "system")},
    lambda m: {"G_ema": _Payload(pickle.loads, pickle.dumps(_Payload(os.system, f"touch {m}")))},
    lambda m: _Payload(io.FileIO, str(m), "w"),
])
def test_own_hostile_pickles_are_refused(make, marker, tmp_path):
    path = _write(tmp_path, make(marker))
    with pytest.raises(stylegan.LoadError, match="refused"):
        stylegan.load(path, device="cpu")
    assert not marker.exists()


def test_hostile_numpy_object_array_is_refused(tmp_path, marker):
    import numpy as np
    arr = np.array([_Payload(os.system, f"touch {marker}")], dtype=object)
    with pytest.raises(stylegan.LoadError):
        stylegan.load(_write(tmp_path, {"G_ema": arr}), device="cpu")
    assert not marker.exists()


def test_truncated_checkpoint(tmp_path):
    data = (REFERENCE / "sg2_32_uncond.pkl").read_bytes()
    path = tmp_path / "cut.pkl"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(stylegan.LoadError, match="truncated or corrupt"):
        stylegan.load(path, device="cpu")


def test_garbage_and_empty_files(tmp_path):
    for name, data in [("garbage.pkl", os.urandom(4096)), ("empty.pkl", b""), ("text.pkl", b"hello world\n")]:
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(stylegan.LoadError, match="not a readable checkpoint"):
            stylegan.load(path, device="cpu")


def test_pickle_without_generator(tmp_path):
    with pytest.raises(stylegan.LoadError, match="no generator"):
        stylegan.load(_write(tmp_path, {"weights": [1, 2, 3]}), device="cpu")


def test_unknown_architecture(tmp_path):
    # A persistent object of an unknown network: synthesis without StyleGAN2/3 layers.
    data = (REFERENCE / "sg2_32_uncond.pkl").read_bytes().replace(b"b4", b"q4")
    path = tmp_path / "odd.pkl"
    path.write_bytes(data)
    with pytest.raises(stylegan.LoadError, match="unknown generator architecture"):
        stylegan.load(path, device="cpu")


def test_missing_file_and_bad_safetensors(tmp_path):
    with pytest.raises(stylegan.LoadError, match="no such checkpoint"):
        stylegan.load(tmp_path / "nope.pkl", device="cpu")
    path = tmp_path / "bad.safetensors"
    path.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    with pytest.raises(stylegan.LoadError):
        stylegan.load(path, device="cpu")


def test_safetensors_from_elsewhere_is_refused(tmp_path):
    import torch
    from safetensors.torch import save_file
    path = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(stylegan.LoadError, match="not written by"):
        stylegan.load(path, device="cpu")


def test_cli_error_is_one_line(tmp_path, marker):
    result = run_python(["-m", "stylegan", "info", str(HOSTILE / "malicious_exec.pkl")],
                        env={"STYLEGAN_PWN_MARKER": str(marker)})
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "refused" in result.stderr
    assert "Traceback" not in result.stderr
    assert not marker.exists()
