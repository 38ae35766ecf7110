"""Started the way a Hugging Face Space starts it, the app listens where the Space says."""

import os
import socket
import subprocess
import sys
import time
import urllib.request

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
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_command_line_flags_win_over_gradios_environment(monkeypatch):
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")
    monkeypatch.setenv("GRADIO_SERVER_PORT", "7000")
    assert (app.parse_args([]).host, app.parse_args([]).port) == ("0.0.0.0", 7000)
    args = app.parse_args(["--host", "127.0.0.1", "--port", "7001"])
    assert (args.host, args.port) == ("127.0.0.1", 7001)
