"""Stage: wiring. The DVC adapter: version the data folder and read its current version.

Only this module talks to DVC (through its command line, run with the same Python as transitcast). The
data version is the md5 DVC records in `data.dvc` for the tracked `data/` folder; runs log it so a result can
be traced back to the exact data.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from pipelines.catalog import DataCatalog

__all__ = ["DataVersion", "current_data_version", "version_data"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataVersion:
    """A DVC data version: the md5 of the tracked folder and the .dvc file holding it."""

    md5: str
    dvc_file: str
    pushed: bool

    @property
    def short(self) -> str:
        """First 12 characters of the md5, for display."""
        return self.md5[:12]


def _dvc(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "dvc", *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)


def current_data_version(dvc_file: Path | None = None) -> DataVersion | None:
    """The version recorded in `dvc_file` (default: the catalog's, beside the data root), or None when the
    data is not versioned yet."""
    if dvc_file is None:
        from pipelines.config import Settings

        dvc_file = Settings().catalog.data.dvc_file
    if not dvc_file.exists():
        return None
    meta = yaml.safe_load(dvc_file.read_text()) or {}
    outs = meta.get("outs") or [{}]
    md5 = outs[0].get("md5")
    return DataVersion(md5=str(md5), dvc_file=str(dvc_file), pushed=False) if md5 else None


def version_data(data_dir: Path, push: bool = True) -> DataVersion:
    """`dvc add` the data folder (and push it to the configured remote).

    Args:
        data_dir: the tracked folder; its `.dvc` file is written beside it (`data.dvc`).
        push: also push to the default remote (a local folder in the embedded setup).

    Raises:
        RuntimeError: DVC failed (for example outside a DVC repository), with DVC's own message.
    """
    root = data_dir.resolve().parent
    added = _dvc("add", data_dir.name, cwd=root)
    if added.returncode != 0:
        raise RuntimeError(f"dvc add {data_dir} failed: {added.stderr.strip() or added.stdout.strip()}")
    pushed = False
    if push:
        result = _dvc("push", f"{data_dir.name}.dvc", cwd=root)
        pushed = result.returncode == 0
        if not pushed:
            log.warning("dvc push failed (data stays in the local cache): %s", result.stderr.strip())
    version = current_data_version(DataCatalog(data_dir.resolve()).dvc_file)
    if version is None:  # pragma: no cover - dvc add always writes an md5
        raise RuntimeError(f"dvc add did not record a version for {data_dir}")
    return DataVersion(md5=version.md5, dvc_file=version.dvc_file, pushed=pushed)
