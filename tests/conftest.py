import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(os.environ.get("STYLEGAN_FIXTURES", ROOT.parent / "shared" / "fixtures"))
REFERENCE = FIXTURES / "reference"
HOSTILE = FIXTURES / "hostile"


@pytest.fixture(scope="module")
def one_thread():
    """Two busy-waiting threads on a shared two-core machine are many times slower than one."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def fixtures_dir():
    if not FIXTURES.is_dir():
        pytest.fail(f"checkpoint fixtures not found at {FIXTURES}; set STYLEGAN_FIXTURES")
    return FIXTURES


def run_python(code_or_args, env=None, cwd=None, timeout=300):
    """Run python in a fresh process (for environment-dependent behaviour and the CLI)."""
    args = ["-c", code_or_args] if isinstance(code_or_args, str) else list(code_or_args)
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, *args], env=full_env, cwd=cwd or ROOT, capture_output=True, text=True,
                          timeout=timeout)


def run_main(capsys, *args):
    """The command line's main(ARGS) in this process: (exit status, stdout, stderr)."""
    from stylegan.__main__ import main
    try:
        status = main([str(a) for a in args])
    except SystemExit as e:  # argparse's own errors and --help
        status = e.code
    out, err = capsys.readouterr()
    return status, out, err


def tiny_generator(resolution=32, seed=0, **kwargs):
    """A small random StyleGAN2 whose faces differ by seed and whose noise matters."""
    import torch
    from stylegan import stylegan2
    torch.manual_seed(seed)
    G = stylegan2.Generator(z_dim=16, c_dim=0, w_dim=16, img_resolution=resolution, img_channels=3,
                            mapping_kwargs={"num_layers": 2}, channel_base=8 * resolution, channel_max=32, **kwargs)
    for layer in G.synthesis.noise_layers:
        layer.noise_strength.data.fill_(0.5)
    G.source, G.sha256 = "tiny", "0" * 64
    return G.eval().requires_grad_(False)
