"""Whatever people type, paste or send: a result or one clear error, never another exception.

Property-based (hypothesis) tests of every parser of user text, and a mutation fuzzer over
the fixture checkpoints' bytes (`python tests/test_hostile_input.py N` runs N mutations).
"""

import json
import os
import random
import sys

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image, PngImagePlugin

import stylegan
from conftest import FIXTURES, REFERENCE, run_python, tiny_generator
from stylegan import demos

SEED_TEXT = st.one_of(st.text(max_size=40), st.text(alphabet="0123456789-,.; :x", max_size=40),
                      st.lists(st.integers(0, 2 ** 40), max_size=5).map(lambda xs: ", ".join(map(str, xs))))
ANYTHING = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
                        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                    max_size=4), max_leaves=12)


@given(SEED_TEXT | ANYTHING)
def test_seed_lists(value):
    try:
        seeds = demos.parse_seeds(value, max_count=32)
    except demos.DemoError as e:
        assert str(e) and "\n" not in str(e)
        return
    assert 1 <= len(seeds) <= 32 and all(type(s) is int and 0 <= s <= demos.MAX_SEED for s in seeds)


@given(st.text(max_size=20) | st.text(alphabet="0123456789-:. ", max_size=12) | ANYTHING, st.integers(1, 20))
@example([float("inf")], 1)  # found by CI: int(inf) raised OverflowError, not a clear sentence
@example((0, float("nan")), 4)
def test_layer_ranges(value, num_ws):
    try:
        start, stop = demos.parse_layer_range(value, num_ws)
    except demos.DemoError as e:
        assert str(e) and "\n" not in str(e)
        return
    assert 0 <= start <= stop <= num_ws


@pytest.fixture(scope="module")
def G():
    return tiny_generator(resolution=16)


RECIPE = st.fixed_dictionaries({"kind": st.sampled_from(["generate", "style_mix", "noise_study", "video", "x"])},
                               optional={k: ANYTHING | SEED_TEXT for k in
                                         ["seeds", "row_seeds", "col_seeds", "seed", "layers", "psi", "noise_mode",
                                          "noise_seed", "class_idx", "translate", "rotate", "batch_size", "output",
                                          "truncation_cutoff", "num_samples", "strength"]})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(RECIPE.map(json.dumps), st.text(max_size=60)))
def test_recipes_in_png_chunks(G, tmp_path_factory, text):
    path = tmp_path_factory.mktemp("recipe") / "r.png"
    info = PngImagePlugin.PngInfo()
    info.add_text(demos.RECIPE_KEY, text)
    Image.new("RGB", (4, 4)).save(path, pnginfo=info)
    try:
        recipe = demos.read_recipe(path)
        image = demos.run_recipe(G, recipe, max_images=4)
    except demos.DemoError as e:
        assert str(e) and "\n" not in str(e)
        return
    assert isinstance(image, Image.Image)


@given(st.text(max_size=30))
def test_url_state(text):
    """Any text in a link's query is read as the field's kind, or left out."""
    from stylegan import settings
    for cls in settings.TASKS.values():
        for f in cls.fields():
            spec = settings.spec_of(f)
            value = settings.from_text(spec, text)
            if spec.kind == "bool":
                assert isinstance(value, bool)
            elif spec.kind in ("seeds", "layers", "choice", "text", "components"):
                assert value == text
            else:
                assert value is None or (isinstance(value, (int, float)) and value == value
                                         and abs(value) < float("inf"))


# -- mutated checkpoints

FUZZ_SOURCES = [REFERENCE / "sg2_16_gray.pkl", FIXTURES / "stylegan1" / "sg1_32.pkl",
                FIXTURES / "stylegan2_tf" / "sg2tf_32_cond4.pkl"]


def mutate(data, rng):
    data = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        kind, at = rng.random(), rng.randrange(len(data))
        if kind < 0.5:
            data[at] = rng.randrange(256)  # flip a byte
        elif kind < 0.7:
            del data[at:at + rng.randint(1, 64)]  # drop a run
        elif kind < 0.85:
            data[at:at] = data[rng.randrange(len(data)):][:rng.randint(1, 64)]  # duplicate a run elsewhere
        else:
            data = data[:at]  # truncate
    return bytes(data)


def fuzz(count, tmp_dir, seed=0):
    """Load `count` mutated checkpoints: each must load or raise LoadError. Returns (loaded, refused)."""
    rng = random.Random(seed)
    originals = [p.read_bytes() for p in FUZZ_SOURCES]
    marker = os.environ["STYLEGAN_PWN_MARKER"]
    loaded = refused = 0
    for i in range(count):
        path = tmp_dir / f"mutant-{i % 4}.pkl"
        path.write_bytes(mutate(originals[i % len(originals)], rng))
        try:
            G = stylegan.load(path, device="cpu")
            with torch.no_grad():
                G(torch.zeros(1, G.z_dim), torch.zeros(1, G.c_dim) if G.c_dim else None)
            loaded += 1
        except stylegan.LoadError as e:
            assert str(e) and "\n" not in str(e)
            refused += 1
        assert not os.path.exists(marker)
    return loaded, refused


def test_mutated_checkpoints_load_or_are_refused(tmp_path, monkeypatch, one_thread):
    monkeypatch.setenv("STYLEGAN_PWN_MARKER", str(tmp_path / "pwned"))
    loaded, refused = fuzz(300, tmp_path)
    assert loaded + refused == 300 and refused > 0


PEAK_MEMORY_OF_LOAD = """
import resource, sys
# Capped, an unprotected loader fails this test with a MemoryError instead of taking the machine down.
resource.setrlimit(resource.RLIMIT_AS, (8 * 2 ** 30, 8 * 2 ** 30))
import stylegan
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    stylegan.load(sys.argv[1], device="cpu")
except stylegan.LoadError:
    pass
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""


@pytest.mark.parametrize("payload", [
    # PROTO 4, None, LONG_BINPUT into memo slot 2**27: the C unpickler sizes its memo table by that number.
    b"\x80\x04N" + b"r" + (2 ** 27).to_bytes(4, "little") + b".",
    # BINBYTES8 claiming a terabyte in a file of a few bytes: refused with LoadError, not a MemoryError.
    b"\x80\x04" + b"\x8e" + (2 ** 40).to_bytes(8, "little") + b"abc",
], ids=["memo-index", "bytes-length"])
def test_small_damaged_files_take_little_memory(tmp_path, payload):
    """Found by the fuzzer: four changed bytes made loading a checkpoint allocate 21 GB."""
    bomb = tmp_path / "bomb.pkl"
    bomb.write_bytes(payload)
    result = run_python(["-c", PEAK_MEMORY_OF_LOAD, str(bomb)])
    assert result.returncode == 0, result.stderr[-500:]
    assert int(result.stdout.split()[-1]) < 100  # MB more than after import


if __name__ == "__main__":  # the long run: python tests/test_hostile_input.py 5000
    import tempfile
    import time
    from pathlib import Path
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["STYLEGAN_PWN_MARKER"] = os.path.join(tmp, "pwned")
        start = time.time()
        loaded, refused = fuzz(int(sys.argv[1]) if len(sys.argv) > 1 else 5000, Path(tmp))
        print(f"{loaded + refused} mutated checkpoints: {loaded} loaded and ran, {refused} refused with LoadError, "
              f"no other exception, no code run ({time.time() - start:.0f} s)")
