"""Benchmark: the HTTP API on loopback: latency, throughput, batching, a soak with zero errors (issue: serving).

Starts `uvicorn pipelines.cli.serving:app_from_env` (one worker, 127.0.0.1, models + snapshot from `outputs/models`)
in a child process, then drives it from this process with a minimal asyncio HTTP/1.1 client (keep-alive,
requests encoded beforehand), so the load generator shares the machine's 2 cores with the server (the
figures are a floor for a separate client machine):

* single-shipment `POST /v1/eta` at concurrency 1, 10 and 100 for `--seconds` each: p50/p99 latency and
  requests/s; before each, the same load on `GET /healthz` (no model): the ceiling of FastAPI + uvicorn +
  this client on this machine, so the ETA figures read as a ratio of it;
* batched `POST /v1/eta` (`--batch` shipments per request, `--batch-concurrency` 2): shipments/s;
* a `--soak`-second run at concurrency 10: every non-200 answer or transport error counts as an error.

Every phase is bounded in time. Run alone: `transitcast bench serving_api` (or `python
bench/serving_api.py --seconds 5 --soak 20`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from typing import Any

from _results import ROOT, record, write_table

COMMAND = "transitcast bench serving_api"
KEY = "bench-key"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _payloads(n: int) -> list[dict[str, Any]]:
    import polars as pl

    from serving.online.predictor import INPUT_COLUMNS

    rows = (
        pl.read_parquet(ROOT / "data" / "validated" / "shipments.parquet")
        .tail(n)
        .select(INPUT_COLUMNS)
        .with_columns(pl.col("created_at").dt.to_string("%+"))
    )
    return json.loads(rows.write_json())


def _get(port: int, path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()


def _request(port: int, body: dict[str, Any]) -> bytes:
    data = json.dumps(body).encode()
    head = (
        f"POST /v1/eta HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-API-Key: {KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes) -> int:
    """Send one keep-alive request and read its response; returns the status code."""
    writer.write(raw)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    length = next(
        int(v) for k, _, v in (line.partition(":") for line in lines[1:]) if k.lower() == "content-length"
    )
    await reader.readexactly(length)
    return status


async def _drive(
    port: int, bodies: list[dict[str, Any]] | list[bytes], concurrency: int, seconds: float
) -> tuple[list[float], int, int]:
    """Closed-loop load: `concurrency` keep-alive connections send requests back to back for `seconds`.

    A minimal HTTP/1.1 client on asyncio streams with the requests encoded beforehand: httpx with 100
    connections costs more CPU than the server on this machine (66 req/s on `/healthz`). `bodies` are
    `/v1/eta` bodies or raw requests.
    """
    raws = [b if isinstance(b, bytes) else _request(port, b) for b in bodies]
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds

    async def client(i: int) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        k = i
        try:
            while time.perf_counter() < stop:
                raw = raws[k % len(raws)]
                k += concurrency
                t0 = time.perf_counter()
                try:
                    ok = await _exchange(reader, writer, raw) == 200
                except (OSError, asyncio.IncompleteReadError, ValueError, StopIteration):
                    ok = False
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                latencies.append(time.perf_counter() - t0)
                errors += 0 if ok else 1
        finally:
            writer.close()

    await asyncio.gather(*(client(i) for i in range(concurrency)))
    return latencies, errors, len(latencies)


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _start_server(port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "TRANSITCAST_API_API_KEYS": KEY,
        "TRANSITCAST_API_POLL_SECONDS": "0",
        "TRANSITCAST_API_MODELS_DIR": str(ROOT / "outputs" / "models"),
        "OMP_WAIT_POLICY": "passive",
    }
    cmd = [
        sys.executable, "-m", "uvicorn", "pipelines.cli.serving:app_from_env", "--factory", "--host", "127.0.0.1",
        "--port", str(port), "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    return subprocess.Popen(cmd, cwd=ROOT, env=env)


def _wait_ready(url: str, timeout: float = 120.0) -> None:
    import httpx

    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"server at {url} not ready after {timeout:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each latency phase")
    parser.add_argument("--soak", type=float, default=60.0, help="soak duration")
    parser.add_argument("--batch", type=int, default=500, help="shipments per batched request")
    parser.add_argument("--batch-concurrency", type=int, default=2, help="concurrent batched requests")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 10, 100])
    args = parser.parse_args()
    if not (ROOT / "outputs" / "models" / "snapshot" / "snapshot.json").exists():
        raise SystemExit("needs `make demo` (models + snapshot in outputs/models)")

    shipments = _payloads(2_000)
    singles = [{"shipments": [s]} for s in shipments]
    batches = [{"shipments": shipments[i : i + args.batch]} for i in range(0, len(shipments), args.batch)]
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server = _start_server(port)
    dataset = "demo models, loopback, 1 uvicorn worker"
    try:
        _wait_ready(url)
        asyncio.run(_drive(port, singles, 4, 3.0))  # warm-up (caches, lazy imports)
        health = [_get(port, "/healthz")]
        for conc in args.concurrency:
            # The framework's ceiling in the same run: FastAPI + uvicorn + this client, no model.
            lat, errors, n = asyncio.run(_drive(port, health, conc, args.seconds))
            system = f"GET /healthz (no model), c={conc}"
            record(
                "serving_api", dataset, system, "p50_latency_ms", _quantile(lat, 0.5) * 1000, "ms", COMMAND
            )
            record(
                "serving_api", dataset, system, "p99_latency_ms", _quantile(lat, 0.99) * 1000, "ms", COMMAND
            )
            record("serving_api", dataset, system, "requests_per_s", n / args.seconds, "req/s", COMMAND)
            lat, errors, n = asyncio.run(_drive(port, singles, conc, args.seconds))
            system = f"/v1/eta 1 shipment, c={conc}"
            record(
                "serving_api", dataset, system, "p50_latency_ms", _quantile(lat, 0.5) * 1000, "ms", COMMAND
            )
            record(
                "serving_api", dataset, system, "p99_latency_ms", _quantile(lat, 0.99) * 1000, "ms", COMMAND
            )
            record("serving_api", dataset, system, "requests_per_s", n / args.seconds, "req/s", COMMAND)
            record("serving_api", dataset, system, "errors", errors, "requests", COMMAND)
        lat, errors, n = asyncio.run(_drive(port, batches, args.batch_concurrency, args.seconds))
        system = f"/v1/eta {args.batch} shipments, c={args.batch_concurrency}"
        record("serving_api", dataset, system, "shipments_per_s", n * args.batch / args.seconds,
               "shipments/s", COMMAND)  # fmt: skip
        record("serving_api", dataset, system, "p99_latency_ms", _quantile(lat, 0.99) * 1000, "ms", COMMAND)
        lat, errors, n = asyncio.run(_drive(port, singles, 10, args.soak))
        system = f"soak {args.soak:.0f} s, 1 shipment, c=10"
        record("serving_api", dataset, system, "requests", n, "requests", COMMAND)
        record("serving_api", dataset, system, "errors", errors, "requests", COMMAND)
        record("serving_api", dataset, system, "p99_latency_ms", _quantile(lat, 0.99) * 1000, "ms", COMMAND)
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
    write_table()


if __name__ == "__main__":
    main()
