"""The README's commands are the ones CI runs."""

import re

from conftest import ROOT


def test_ci_runs_the_readme_test_command():
    commands = re.findall(r"```bash\n(.+?)\n```", (ROOT / "README.md").read_text())
    assert commands[0].endswith("python app.py")
    assert commands[1] in (ROOT / ".ci" / "run").read_text().splitlines()
