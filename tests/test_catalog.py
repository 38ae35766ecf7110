"""The catalog's sources: tried in order and checked (size, sha256); `check-catalog` against a local stand-in Hub."""

import hashlib
import json
import re

import pytest

from conftest import REFERENCE, ROOT, run_python
from hub_server import HubServer
from test_hub import LOAD

GRAY = (REFERENCE / "sg2_16_gray.pkl").read_bytes()
COND = (REFERENCE / "sg2_32_cond10.pkl").read_bytes()


def sha(data):
    return hashlib.sha256(data).hexdigest()


def write_catalog(path, server):
    entries = [
        {"name": "Moved", "sources": [{"url": "hf://someone/faces/gray.pkl"},
                                      {"url": server + "/nvidia/nets/resolve/main/gray.pkl", "size": len(GRAY),
                                       "sha256": sha(GRAY)}]},
        {"name": "Changed", "sources": [{"url": "hf://someone/faces/cond.pkl", "size": len(COND), "sha256": "0" * 64}]},
        {"name": "Fine", "sources": [{"url": "hf://someone/faces/fine.pkl", "size": len(GRAY), "sha256": sha(GRAY)}]},
    ]
    for entry in entries:
        entry.update(family="stylegan2", resolution=16, licence="test", description="test")
    path.write_text(json.dumps(entries))
    return path


@pytest.fixture
def hub():
    with HubServer({"nvidia/nets/gray.pkl": GRAY, "someone/faces/cond.pkl": COND,
                    "someone/faces/fine.pkl": GRAY}) as server:
        yield server


def environment(tmp_path, endpoint, catalog):
    return {"HF_ENDPOINT": endpoint, "HF_HOME": str(tmp_path / "hf"), "STYLEGAN_CACHE": str(tmp_path / "cache"),
            "STYLEGAN_CATALOG": str(catalog), "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_ETAG_TIMEOUT": "3",
            "HF_HUB_DOWNLOAD_TIMEOUT": "3"}


def load(url, env):
    result = run_python(["-c", LOAD, url], env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def cached_files(tmp_path, size):
    return [p for p in tmp_path.rglob("*") if p.is_file() and p.stat().st_size == size]


def test_a_moved_file_comes_from_the_next_source(tmp_path, hub):
    env = environment(tmp_path, hub.url, write_catalog(tmp_path / "catalog.json", hub.url))
    result = load("hf://someone/faces/gray.pkl", env)
    assert result["ok"] and result["res"] == 16 and result["sha256"] == sha(GRAY)
    assert ("GET", "/nvidia/nets/resolve/main/gray.pkl") in hub.requests


def test_a_file_whose_hash_differs_is_refused_and_not_kept(tmp_path, hub):
    env = environment(tmp_path, hub.url, write_catalog(tmp_path / "catalog.json", hub.url))
    result = load("hf://someone/faces/cond.pkl", env)
    assert not result["ok"]
    assert result["error"] == "hf://someone/faces/cond.pkl: refused, the file's sha256 differs from the catalog's; " \
                              "it was not kept."
    assert ("GET", "/someone/faces/resolve/main/cond.pkl") in hub.requests
    assert not cached_files(tmp_path, len(COND))


def test_every_source_failing_is_one_sentence(tmp_path):
    with HubServer({}) as hub:
        env = environment(tmp_path, hub.url, write_catalog(tmp_path / "catalog.json", hub.url))
        result = load("hf://someone/faces/gray.pkl", env)
    assert not result["ok"]
    error = result["error"]
    assert error.startswith("Moved: none of its 2 sources gave the model (hf://someone/faces/gray.pkl: ")
    assert "404" in error and error.endswith(".") and "\n" not in error


def test_check_catalog(tmp_path, hub):
    env = environment(tmp_path, hub.url, write_catalog(tmp_path / "catalog.json", hub.url))
    result = run_python(["-m", "stylegan", "check-catalog", "--timeout", "5"], env=env)
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    cells = [re.split(r"\s{2,}", line) for line in lines[:-1]]
    assert cells[0] == ["model", "source", "reachable", "size", "sha256"]
    rows = {tuple(row[:2]): row[2:] for row in cells[1:]}
    assert rows[("Moved", "hf://someone/faces/gray.pkl")] == ["no: the repository has no such file (moved or removed)", "-", "-"]
    listed = f"{len(GRAY):,} (as listed)"
    assert rows[("Moved", hub.url + "/nvidia/nets/resolve/main/gray.pkl")] == ["yes", listed, "not checked"]
    assert rows[("Changed", "hf://someone/faces/cond.pkl")] == ["yes", f"{len(COND):,} (as listed)", "differs"]
    assert rows[("Fine", "hf://someone/faces/fine.pkl")] == ["yes", listed, "matches"]
    assert lines[-1] == "2 of 4 sources are as the catalog says; 2 are not."
    assert not [p for p in tmp_path.rglob("*.pkl")]  # nothing downloaded


def test_check_catalog_offline(tmp_path):
    env = environment(tmp_path, "http://127.0.0.1:9", write_catalog(tmp_path / "catalog.json", "http://127.0.0.1:9"))
    result = run_python(["-m", "stylegan", "check-catalog"], env=env)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == "error: The catalog cannot be checked offline: no host of its sources accepts a connection.\n"


def test_the_shipped_catalog_lists_hub_then_nvidia():
    entries = json.loads((ROOT / "checkpoints" / "catalog.json").read_text())
    for entry in entries:
        urls = [s["url"] for s in entry["sources"]]
        assert len(set(urls)) == len(urls) and entry["licence"], entry["name"]
        if urls[0].startswith("hf://public-data/StyleGAN"):
            assert urls[1].startswith("https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan")
            assert urls[1].rsplit("/", 1)[1] == urls[0].rsplit("/", 1)[1]
            assert entry["licence"] == "NVIDIA Source Code License for StyleGAN3 — non-commercial"
