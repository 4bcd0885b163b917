"""The DVC adapter: versions data/ and reads the version back."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.adapters.dvc import current_data_version, version_data


def test_version_data_records_md5_that_changes_with_the_data(tmp_path: Path) -> None:
    init = subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=tmp_path, check=False)
    if init.returncode != 0:
        pytest.skip("dvc cannot initialise here")
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("one")
    first = version_data(data, push=False)
    assert current_data_version(tmp_path / "data.dvc") == first.__class__(first.md5, first.dvc_file, False)
    (data / "a.txt").write_text("two")
    second = version_data(data, push=False)
    assert second.md5 != first.md5
    shutil.rmtree(tmp_path / ".dvc", ignore_errors=True)
    with pytest.raises(RuntimeError, match="dvc add"):
        version_data(data, push=False)
