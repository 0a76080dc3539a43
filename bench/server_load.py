"""Load test of `rewardforge serve` on loopback: concurrent clients, latency and throughput.

    python bench/server_load.py                                  # 5,000 requests, 64 clients
    python bench/server_load.py --model runs/rm --requests 500 --clients 16 --max-items 4

Starts the server as its own process (as a user would), sends `--requests` `/v1/score`
requests of 1 to `--max-items` items each (cycling) from `--clients` concurrent clients (real HH
prompt/response pairs from the bundled dev split), and reports errors, p50/p99 latency,
requests/s and items/s. It then stops the server with SIGTERM and reports its exit code
(uvicorn finishes the requests in flight, then re-raises the signal, so a clean stop is 0 or
-15). Without `--model` it first trains a `minilm-l6` reward model for one step on 8 pairs (the
weights do not matter for speed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
DEV = ROOT / "rewardforge" / "sample_data" / "dev.jsonl"
KEY = "load-test-key"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a rewardforge model directory")
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--max-items", type=int, default=1, help="items per request, at most")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work_dir:
        model = args.model or train_small_model(Path(work_dir))
        result = run(model, args.requests, args.clients, args.max_items)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if result["errors"] or not result["stopped_cleanly"]:
        sys.exit(1)


def train_small_model(work_dir: Path) -> Path:
    data = work_dir / "train.jsonl"
    lines = (ROOT / "rewardforge" / "sample_data" / "train.jsonl").read_text("utf-8").splitlines()
    data.write_text("\n".join(lines[:8]) + "\n", encoding="utf-8")
    command = [sys.executable, "-m", "rewardforge.cli", "train", "--data", str(data)]
    command += ["--model", "minilm-l6", "--max-steps", "1", "--output", str(work_dir / "rm")]
    subprocess.run(command, check=True, capture_output=True)
    return work_dir / "rm"


def run(model: Path, requests: int, clients: int, max_items: int) -> dict:
    port = free_port()
    environment = {**os.environ, "RM_KEY": KEY}
    command = [sys.executable, "-m", "rewardforge.cli", "serve", "--model", str(model)]
    command += ["--port", str(port), "--api-key-env", "RM_KEY"]
    server = subprocess.Popen(command, env=environment, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, server)
        bodies = request_bodies(requests, max_items)
        started = time.perf_counter()
        latencies, errors = asyncio.run(send_all(url, bodies, clients))
        wall = time.perf_counter() - started
        metrics = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {KEY}"}).text
    finally:
        server.send_signal(signal.SIGTERM)
        exit_code = server.wait(timeout=60)
    batches = float(metrics.split("rewardforge_batch_size_count ")[1].split()[0])
    ordered = sorted(latencies)
    return {
        "requests": requests,
        "clients": clients,
        "errors": errors,
        "p50_ms": 1000 * statistics.median(ordered),
        "p99_ms": 1000 * ordered[int(0.99 * (len(ordered) - 1))],
        "requests_per_s": requests / wall,
        "items_per_s": sum(len(body["items"]) for body in bodies) / wall,
        "model_calls": int(batches),
        "wall_s": wall,
        "exit_code": exit_code,
        # uvicorn finishes the requests in flight, then re-raises SIGTERM on itself
        "stopped_cleanly": exit_code in (0, -signal.SIGTERM),
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_healthy(url: str, server: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited early:\n{server.stderr.read()[-3000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError("the server did not become healthy in time")


def request_bodies(count: int, max_items: int) -> list[dict]:
    """`count` request bodies of 1 to `max_items` (prompt, response) items from the dev split."""
    rows = [json.loads(line) for line in DEV.read_text(encoding="utf-8").splitlines()]
    texts = [row[key] for row in rows for key in ("chosen", "rejected")]
    bodies = []
    for index in range(count):
        items = []
        for offset in range(index % max_items + 1):
            prompt, _, response = texts[(index + offset) % len(texts)].rpartition("\n\nAssistant:")
            items.append({"prompt": prompt.strip(), "response": response.strip()})
        bodies.append({"items": items})
    return bodies


async def send_all(url: str, bodies: list[dict], clients: int) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    queue: asyncio.Queue[dict] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    headers = {"Authorization": f"Bearer {KEY}"}

    async def client_loop(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while not queue.empty():
            body = queue.get_nowait()
            started = time.perf_counter()
            try:
                reply = await client.post("/v1/score", json=body, headers=headers)
                ok = reply.status_code == 200 and len(reply.json()["rewards"]) == len(body["items"])
            except httpx.HTTPError:
                ok = False
            latencies.append(time.perf_counter() - started)
            errors += not ok

    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        await asyncio.gather(*(client_loop(client) for _ in range(clients)))
    return latencies, errors


if __name__ == "__main__":
    main()
