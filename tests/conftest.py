import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(os.environ.get("STYLEGAN_FIXTURES", ROOT.parent / "shared" / "fixtures"))
REFERENCE = FIXTURES / "reference"
HOSTILE = FIXTURES / "hostile"


@pytest.fixture(scope="session")
def fixtures_dir():
    if not FIXTURES.is_dir():
        pytest.fail(f"checkpoint fixtures not found at {FIXTURES}; set STYLEGAN_FIXTURES")
    return FIXTURES


def run_python(code_or_args, env=None, cwd=None, timeout=300):
    """Run python in a fresh process (for environment-dependent behaviour and the CLI)."""
    args = ["-c", code_or_args] if isinstance(code_or_args, str) else list(code_or_args)
    full_env = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
    return subprocess.run([sys.executable, *args], env=full_env, cwd=cwd or ROOT, capture_output=True, text=True,
                          timeout=timeout)
