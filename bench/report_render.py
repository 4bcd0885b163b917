"""Bench: render the planner report in headless Chromium and save a screenshot to look at.

Run with `transitcast bench report_render` (or `cd bench && python report_render.py [report.html]`). Without an
argument it renders the newest `outputs/reports/*/report.html`. The screenshot lands next to the report
(`report.png`); the figures recorded are the page size and whether Chromium loaded it with the network off.
Chromium runs with a fresh profile folder, no sandbox (containers), no GPU and no background networking, so
a report that needed the internet would show broken images in the screenshot.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _results import record, write_table

log = logging.getLogger(__name__)

CHROMIUM = "/usr/bin/chromium"
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
)  # fmt: skip


def screenshot(html: Path, png: Path, width: int = 1400, height: int = 4200, timeout: float = 90.0) -> Path:
    """Render `html` in headless Chromium into `png` (full window of `width` x `height`)."""
    exe = shutil.which("chromium") or CHROMIUM
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        cmd = [
            exe, *FLAGS, f"--user-data-dir={profile}", f"--screenshot={png}", f"--window-size={width},{height}",
            html.resolve().as_uri(),
        ]  # fmt: skip
        subprocess.run(cmd, check=True, capture_output=True, timeout=timeout)
    if not png.exists():
        raise RuntimeError(f"chromium did not write {png}")
    return png


def main(argv: list[str] | None = None) -> Path | None:
    """Render the given (or newest) report and record its size, external URLs and render time."""
    args = argv if argv is not None else sys.argv[1:]
    if args:
        html = Path(args[0])
    else:
        root = Path(__file__).resolve().parents[1] / "outputs" / "reports"
        reports = sorted(root.glob("*/report.html"), key=lambda p: p.stat().st_mtime)
        if not reports:
            log.warning("no %s/*/report.html yet: run `transitcast plan` (or `make demo`) first", root)
            return None
        html = reports[-1]
    png = html.with_suffix(".png")
    t0 = time.perf_counter()
    screenshot(html, png)
    seconds = time.perf_counter() - t0
    text = html.read_text(encoding="utf-8")
    external = text.count("http://") + text.count("https://")
    cmd = "transitcast bench report_render" + (f" {args[0]}" if args and not Path(args[0]).is_absolute() else "")
    data = f"report {html.parent.name}"
    record("report_render", data, "chromium", "html_size", len(text.encode()) / 1024, "KiB", cmd)
    record("report_render", data, "chromium", "external_urls", external, "count", cmd)
    record("report_render", data, "chromium", "render_time", seconds, "s", cmd)
    write_table()
    log.info("rendered %s -> %s in %.1f s", html, png, seconds)
    return png


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main()
