"""Benchmark results: JSON lines in bench/results/NAME.jsonl and the table in docs/benchmarks.md.

Every benchmark script calls `record(...)` for each figure, then `write_table()`, which rebuilds
docs/benchmarks.md from the latest figure of every (benchmark, dataset, system, metric).
"""

from __future__ import annotations

import datetime as dt
import json
import platform
import re
import subprocess
import sys
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DOC = ROOT / "docs" / "benchmarks.md"


def _git_sha() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


def portable_command(command: str) -> str:
    """The command as a reader runs it from the repository root: no `cd <abs path> &&`, no absolute paths."""
    command = re.sub(r"^cd\s+\S+\s*&&\s*", "", command.strip())
    command = command.replace(f"{ROOT}/", "").replace(str(ROOT), ".")
    return re.sub(r"(?<![\w.])/\S*/(\.venv/bin/)", r"\1", command)


def record(
    benchmark: str, dataset: str, system: str, metric: str, value: float, unit: str, command: str
) -> dict[str, object]:
    """Append one figure to bench/results/<benchmark>.jsonl and return it."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    command = portable_command(command)
    row = {
        "benchmark": benchmark,
        "dataset": dataset,
        "system": system,
        "metric": metric,
        "value": float(value),
        "unit": unit,
        "command": command,
        "recorded_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git_sha": _git_sha(),
        "machine": f"{platform.machine()} {platform.python_version()} cpus={_cpus()}",
    }
    with (RESULTS / f"{benchmark}.jsonl").open("a") as fh:
        fh.write(json.dumps(row) + "\n")
    print(f"{benchmark:>12} | {dataset:<28} | {system:<22} | {metric:<28} | {value:>12,.4g} {unit}")
    return row


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0


def latest() -> pl.DataFrame:
    """The latest figure of each (benchmark, dataset, system, metric) across all result files."""
    files = sorted(RESULTS.glob("*.jsonl"))
    if not files:
        return pl.DataFrame()
    rows = [json.loads(line) for f in files for line in f.read_text().splitlines() if line.strip()]
    df = pl.DataFrame(rows)
    return (
        df.sort("recorded_at")
        .group_by("benchmark", "dataset", "system", "metric", maintain_order=True)
        .last()
        .sort("benchmark", "dataset", "metric", "system")
    )


def _kept_sections(measured: set[str]) -> dict[str, list[str]]:
    """Sections of the current table for benchmarks without local results (bench/results is not in git, so a
    fresh clone that re-runs one benchmark keeps every other benchmark's last published figures)."""
    if not DOC.exists():
        return {}
    sections: dict[str, list[str]] = {}
    current: str | None = None
    for line in DOC.read_text().splitlines():
        if line.startswith("## "):
            current = line[3:].strip()
            sections[current] = [line]
        elif current is not None:
            sections[current].append(line)
    out = {}
    for name, lines in sections.items():
        if name in measured:
            continue
        while lines and not lines[-1].strip():
            lines.pop()
        out[name] = [_portable_row(x) for x in lines] + [""]
    return out


def _portable_row(line: str) -> str:
    if not line.startswith("|"):
        return line
    return re.sub(r"`([^`]*)`", lambda m: f"`{portable_command(m.group(1))}`", line)


def write_table(notes: dict[str, str] | None = None) -> Path:
    """Rebuild docs/benchmarks.md from the latest results (and keep sections of benchmarks not re-run here).

    `notes` maps a benchmark to a paragraph printed above its table (a section kept unchanged keeps its own).
    """
    df = latest()
    measured = set() if df.is_empty() else set(df["benchmark"].unique().to_list())
    kept = _kept_sections(measured)
    lines = [
        "# Benchmarks",
        "",
        "Latest figure per benchmark, dataset, system and metric, from `bench/results/*.jsonl` (not in git).",
        "Regenerate with `make bench` (all) or `transitcast bench NAME` (one). Machine: 2 cores, 24 GiB.",
        "",
    ]
    if df.is_empty() and not kept:
        lines.append("No results yet.")
    blocks: dict[str, list[str]] = dict(kept)
    for (bench,), part in ([] if df.is_empty() else df.group_by("benchmark", maintain_order=True)):
        note = (notes or {}).get(str(bench))
        lines_b = [
            f"## {bench}",
            "",
            *([note.strip(), ""] if note else []),
            "| dataset | system | metric | value | unit | recorded | command |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in part.iter_rows(named=True):
            lines_b.append(
                f"| {r['dataset']} | {r['system']} | {r['metric']} | {r['value']:,.4g} | {r['unit']} "
                f"| {r['recorded_at'][:10]} {r['git_sha']} | `{portable_command(r['command'])}` |"
            )
        lines_b.append("")
        blocks[str(bench)] = lines_b
    for name in sorted(blocks):
        lines += blocks[name]
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text("\n".join(lines) + "\n")
    return DOC


def run_child(code: str) -> dict[str, float]:
    """Run Python `code` in a fresh process (so peak memory is its own); it must print one JSON line last."""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"benchmark child failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])
