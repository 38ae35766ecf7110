"""bench/side_by_side.py without NVIDIA's code (CI has no clone): a wrong --reference is one clear sentence."""

import pytest

from conftest import ROOT, run_python

BENCH = str(ROOT / "bench" / "side_by_side.py")


@pytest.mark.parametrize("make_folder", [False, True], ids=["no such folder", "folder without their code"])
def test_a_reference_that_is_not_a_stylegan3_clone_is_refused_in_one_sentence(tmp_path, make_folder):
    reference = tmp_path / "stylegan3"
    if make_folder:
        (reference / "training").mkdir(parents=True)
        (reference / "training" / "networks_stylegan2.py").write_text("")  # one of the files, not all
    result = run_python([BENCH, "--reference", str(reference), "--quick"], timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"error: --reference {reference} is not a clone of NVlabs/stylegan3")
    assert "git clone https://github.com/NVlabs/stylegan3" in lines[0]
