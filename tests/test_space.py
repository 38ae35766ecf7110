"""Started the way a Hugging Face Space starts it, the app listens where the Space says."""

import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

import app
from conftest import ROOT


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_started_like_a_space_the_app_listens_on_gradios_address_and_port():
    port = _free_port()
    env = {**os.environ, "GRADIO_SERVER_NAME": "0.0.0.0", "GRADIO_SERVER_PORT": str(port), "SPACE_ID": "someone/stylegan",
           "HF_HUB_OFFLINE": "1"}
    server = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        # 127.0.0.2 is this machine too, but only a server listening on every address (0.0.0.0) answers there,
        # as only such a server answers the Space's proxy.
        url = f"http://127.0.0.2:{port}/"
        deadline = time.time() + 120
        while True:
            assert server.poll() is None, f"the app stopped: {server.stderr.read()[-2000:]}"
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    assert response.status == 200 and b"StyleGAN" in response.read()
                    break
            except OSError:
                assert time.time() < deadline, f"nothing answered at {url} within 120 s"
                time.sleep(0.5)
        # A person's mistake is one line in the server's log, not a traceback.
        from gradio_client import Client
        with pytest.raises(Exception, match="is not a seed"):
            Client(url, verbose=False).predict(model="Offline faces 64 px (bundled)", seeds="1, x", api_name="/generate")
    finally:
        server.terminate()
        server.wait(timeout=30)
    log = server.stderr.read()
    assert "Traceback" not in log and log.count("'x' is not a seed") == 1, log[-3000:]


def test_command_line_flags_win_over_gradios_environment(monkeypatch):
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")
    monkeypatch.setenv("GRADIO_SERVER_PORT", "7000")
    assert (app.parse_args([]).host, app.parse_args([]).port) == ("0.0.0.0", 7000)
    args = app.parse_args(["--host", "127.0.0.1", "--port", "7001"])
    assert (args.host, args.port) == ("127.0.0.1", 7001)


def test_on_zerogpu_each_tabs_computation_runs_inside_spaces_gpu():
    """ZeroGPU attaches a GPU only inside functions wrapped by spaces.GPU; here a stand-in `spaces`
    package records what runs inside it."""
    from conftest import REFERENCE, run_python
    code = f"""
import sys, types
inside = []
def GPU(fn):
    def wrapped(*args):
        inside.append(fn.__name__)
        result = fn(*args)
        return list(result) if hasattr(result, '__next__') else result
    wrapped.__signature__ = __import__('inspect').signature(fn)
    return wrapped
sys.modules['spaces'] = types.SimpleNamespace(GPU=GPU)
import app
studio = app.build_app({str(REFERENCE / 'sg2_32_uncond.pkl')!r}, 'cpu', app.SourcePolicy([{str(REFERENCE)!r}])).studio
images, grid, recipe, _ = studio.generate({str(REFERENCE / 'sg2_32_uncond.pkl')!r}, '0-1')
print(inside, len(images))
"""
    result = run_python(code, env={"HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("['_generate'] 2")


def test_the_readme_front_matter_describes_a_space_that_starts():
    front = (ROOT / "README.md").read_text().split("---\n")[1]
    fields = dict(line.split(": ", 1) for line in front.splitlines() if ": " in line and not line.startswith(" "))
    assert fields["sdk"] == "gradio" and (ROOT / fields["app_file"]).is_file()
    catalog = (ROOT / "checkpoints" / "catalog.json").read_text()
    preloaded = front.split("preload_from_hub:\n")[1].strip().lstrip("- ")
    repo, files = preloaded.split(" ")
    assert all(f"hf://{repo}/{name}" in catalog for name in files.split(","))
