"""Benchmark: the HTTP API on loopback: latency, throughput, batching, a soak with zero errors (issue: serving).

Starts `uvicorn serving.api:app_from_env` (one worker, 127.0.0.1, models + snapshot from `outputs/models`)
in a child process, then drives it from this process with an asyncio httpx client, so the load generator
shares the machine's 2 cores with the server (the figures are a floor for a separate client machine):

* single-shipment `POST /v1/eta` at concurrency 1, 10 and 100 for `--seconds` each: p50/p99 latency and
  requests/s;
* batched `POST /v1/eta` (`--batch` shipments per request, concurrency 4): shipments/s;
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

    rows = (
        pl.read_parquet(ROOT / "data" / "validated" / "shipments.parquet")
        .tail(n)
        .select(
            "shipment_id",
            "created_at",
            "origin_country",
            "origin_hub",
            "destination_country",
            "destination_region",
            "mode",
            "carrier",
            "weight_kg",
            "declared_value_usd",
            "hs_code",
            "item_count",
            "incoterm",
            "promised_date",
        )  # fmt: skip
        .with_columns(pl.col("created_at").dt.to_string("%+"))
    )
    return json.loads(rows.write_json())


async def _drive(
    url: str, bodies: list[dict[str, Any]], concurrency: int, seconds: float
) -> tuple[list[float], int, int]:
    """Closed-loop load: `concurrency` clients send requests back to back for `seconds`."""
    import httpx

    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": KEY}, limits=limits, timeout=30) as c:

        async def client(i: int) -> None:
            nonlocal errors
            k = i
            while time.perf_counter() < stop:
                body = bodies[k % len(bodies)]
                k += concurrency
                t0 = time.perf_counter()
                try:
                    r = await c.post("/v1/eta", json=body)
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - t0)
                errors += 0 if ok else 1

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
        sys.executable, "-m", "uvicorn", "serving.api:app_from_env", "--factory", "--host", "127.0.0.1",
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
    parser.add_argument("--batch", type=int, default=100, help="shipments per batched request")
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
        asyncio.run(_drive(url, singles, 4, 3.0))  # warm-up (caches, lazy imports)
        for conc in args.concurrency:
            lat, errors, n = asyncio.run(_drive(url, singles, conc, args.seconds))
            system = f"/v1/eta 1 shipment, c={conc}"
            record(
                "serving_api", dataset, system, "p50_latency_ms", _quantile(lat, 0.5) * 1000, "ms", COMMAND
            )
            record(
                "serving_api", dataset, system, "p99_latency_ms", _quantile(lat, 0.99) * 1000, "ms", COMMAND
            )
            record("serving_api", dataset, system, "requests_per_s", n / args.seconds, "req/s", COMMAND)
            record("serving_api", dataset, system, "errors", errors, "requests", COMMAND)
        lat, errors, n = asyncio.run(_drive(url, batches, 4, args.seconds))
        system = f"/v1/eta {args.batch} shipments, c=4"
        record("serving_api", dataset, system, "shipments_per_s", n * args.batch / args.seconds,
               "shipments/s", COMMAND)  # fmt: skip
        record("serving_api", dataset, system, "p99_latency_ms", _quantile(lat, 0.99) * 1000, "ms", COMMAND)
        lat, errors, n = asyncio.run(_drive(url, singles, 10, args.soak))
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
