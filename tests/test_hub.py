"""hf:// sources go through the real huggingface_hub download path, against a local stand-in Hub."""

import hashlib
import json

import pytest

from conftest import REFERENCE, ROOT, run_python
from hub_server import HubServer

LOAD = """
import json, sys, stylegan
try:
    G = stylegan.load(sys.argv[1], device="cpu")
    print(json.dumps({"ok": True, "res": G.img_resolution, "sha256": G.sha256}))
except stylegan.LoadError as e:
    print(json.dumps({"ok": False, "error": str(e)}))
"""


def hub_load(url, endpoint, home):
    env = {"HF_ENDPOINT": endpoint, "HF_HOME": str(home), "HF_HUB_DISABLE_TELEMETRY": "1",
           "HF_HUB_ETAG_TIMEOUT": "3", "HF_HUB_DOWNLOAD_TIMEOUT": "3"}
    result = run_python(["-c", LOAD, url], env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture
def checkpoint_bytes():
    return (REFERENCE / "sg2_16_gray.pkl").read_bytes()


def test_download_then_cache(tmp_path, checkpoint_bytes):
    url = "hf://someone/faces/nets/gray.pkl"
    with HubServer({"someone/faces/nets/gray.pkl": checkpoint_bytes}) as hub:
        first = hub_load(url, hub.url, tmp_path)
        assert first["ok"] and first["res"] == 16
        assert ("GET", "/someone/faces/resolve/main/nets/gray.pkl") in hub.requests
        endpoint = hub.url
    # The server is gone: the cached copy is used.
    second = hub_load(url, endpoint, tmp_path)
    assert second == first


def test_revision(tmp_path, checkpoint_bytes):
    with HubServer({"someone/faces/gray.pkl": checkpoint_bytes}) as hub:
        assert hub_load("hf://someone/faces/gray.pkl@v1.0", hub.url, tmp_path)["ok"]
        assert ("GET", "/someone/faces/resolve/v1.0/gray.pkl") in hub.requests


def test_missing_file(tmp_path):
    with HubServer({}) as hub:
        result = hub_load("hf://someone/faces/missing.pkl", hub.url, tmp_path)
    assert not result["ok"]
    assert "missing.pkl" in result["error"] and "\n" not in result["error"]


def test_download_that_breaks_off_is_retried(tmp_path, checkpoint_bytes):
    """The connection drops a third of the way in, twice: huggingface_hub retries (from a byte range
    once it has a chunk, from the start before), and the model loaded is the whole file."""
    key = "someone/faces/gray.pkl"
    with HubServer({key: checkpoint_bytes}, drops={key: 2}) as hub:
        result = hub_load("hf://" + key, hub.url, tmp_path)
    assert result["ok"], result
    assert result["sha256"] == hashlib.sha256(checkpoint_bytes).hexdigest()
    assert len(hub.ranges) == 3  # two broken GETs, one whole


def test_download_that_keeps_breaking_off(tmp_path, checkpoint_bytes):
    """Every attempt breaks off: one clear sentence, and the partial file is never loaded, now or later."""
    key = "someone/faces/gray.pkl"
    with HubServer({key: checkpoint_bytes}, truncate={key}) as hub:
        result = hub_load("hf://" + key, hub.url, tmp_path)
        endpoint = hub.url
    assert not result["ok"]
    assert "download failed" in result["error"] and "\n" not in result["error"]
    assert len(hub.ranges) > 1  # it did retry
    # Nothing half-downloaded is left in the cache as a finished file ...
    assert not list(tmp_path.rglob("gray.pkl"))
    # ... so with the Hub gone, the partial bytes are not taken for the model either.
    later = hub_load("hf://" + key, endpoint, tmp_path)
    assert not later["ok"] and "not in the local cache" in later["error"]


def test_unreachable_hub_without_cache(tmp_path):
    result = hub_load("hf://someone/faces/gray.pkl", "http://127.0.0.1:9", tmp_path)
    assert not result["ok"]
    assert "cannot be reached" in result["error"]


def test_malformed_hub_url(tmp_path):
    result = hub_load("hf://only-owner/file.pkl", "http://127.0.0.1:9", tmp_path)
    assert not result["ok"] and "hf://owner/repo/file.pkl" in result["error"]


# -- plain http(s) URLs (e.g. NVIDIA's own download links)

def url_load(url, home):
    result = run_python(["-c", LOAD, url], env={"STYLEGAN_CACHE": str(home)})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_url_download_then_cache(tmp_path, checkpoint_bytes):
    with HubServer({"nvidia/nets/gray.pkl": checkpoint_bytes}) as server:
        url = server.url + "/nvidia/nets/resolve/main/gray.pkl"
        first = url_load(url, tmp_path)
        assert first["ok"] and first["res"] == 16
    assert url_load(url, tmp_path) == first  # the server is gone: the downloaded copy is used
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == ["gray.pkl"]


def test_url_errors_leave_nothing(tmp_path, checkpoint_bytes):
    key = "nvidia/nets/gray.pkl"
    with HubServer({key: checkpoint_bytes}, truncate={key}) as server:
        broken = url_load(server.url + "/nvidia/nets/resolve/main/gray.pkl", tmp_path)
        missing = url_load(server.url + "/nvidia/nets/resolve/main/other.pkl", tmp_path)
    assert not broken["ok"] and "download failed" in broken["error"]
    assert not missing["ok"] and "404" in missing["error"]
    unreachable = url_load("http://127.0.0.1:9/gray.pkl", tmp_path)
    assert not unreachable["ok"] and "download failed" in unreachable["error"]
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]  # no partial file kept or loadable


def test_rosinality_pt_from_hub_and_url(tmp_path):
    data = (ROOT / "tests" / "fixtures" / "rosinality" / "ros_16_converted.pt").read_bytes()
    with HubServer({"someone/anime/ros.pt": data}) as server:
        assert hub_load("hf://someone/anime/ros.pt", server.url, tmp_path / "hub")["res"] == 16
        assert url_load(server.url + "/someone/anime/resolve/main/ros.pt", tmp_path / "url")["res"] == 16
