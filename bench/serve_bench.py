"""The one-machine runner on uvicorn (today's `manage.py serve`) against daphne (what it ran before).

    .venv/bin/python bench/serve_bench.py [--seconds 10] [--connections 20] [--rounds 2]

Both serve `coinlink.asgi:application` in the embedded default (a fresh SQLite file, no Redis), in
turn (uvicorn, daphne, uvicorn, daphne ... for --rounds), with the same limits. Per server it reports:
  - HTTP: requests per second and p50/p95 latency of `GET /health` and of the live page `GET /`, from
    --connections keep-alive connections of bench/load/http.py, each sending its next request as
    soon as the previous answer is in (the median round is reported);
  - a 50 MiB declared body: seconds until the 413 and MiB the client had sent by then (it sends as
    fast as the server reads);
  - the close code a client receives for a frame over WS_MAX_FRAME_BYTES and for a flood past
    WS_MAX_FRAMES_PER_SECOND (`none` = the socket stayed open for 5 s).
The load generator shares the machine's cores with the server, the same for both.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import websockets

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.load.http import Connection
from tests.coinlink.procs import ROOT, free_port, http_get, stop, wait_until

FIFTY_MIB = 50 * 1024 * 1024


def command(kind: str, port: int) -> list[str]:
    if kind == "uvicorn":
        return [sys.executable, "manage.py", "serve", "--no-scheduler", "--port", str(port)]
    return [sys.executable, "-m", "daphne", "-v", "0", "-b", "127.0.0.1", "-p", str(port), "coinlink.asgi:application"]


async def http_load(port: int, path: str, connections: int, seconds: float) -> dict:
    latencies: list[float] = []
    deadline = time.monotonic() + seconds

    async def user() -> None:
        connection = Connection("127.0.0.1", port)
        try:
            while time.monotonic() < deadline:
                response = await connection.request("GET", path)
                if response.status == 200:
                    latencies.append(response.elapsed_ms)
        finally:
            connection.close()

    started = time.monotonic()
    await asyncio.gather(*(user() for _ in range(connections)))
    latencies.sort()
    return {
        "rps": len(latencies) / (time.monotonic() - started),
        "p50": latencies[len(latencies) // 2],
        "p95": latencies[int(len(latencies) * 0.95)],
    }


def big_body(port: int) -> dict:
    """Declare 50 MiB and send it as fast as the server takes it; when does the 413 come?"""
    sock = socket.create_connection(("127.0.0.1", port), timeout=120)
    head = b"POST /api/v2/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    sock.sendall(head + b"Content-Length: %d\r\n\r\n" % FIFTY_MIB)
    sent, answered = [0], threading.Event()

    def pump() -> None:
        block = b"x" * 65536
        try:
            while sent[0] < FIFTY_MIB and not answered.is_set():
                sent[0] += sock.send(block[: FIFTY_MIB - sent[0]])
        except OSError:
            pass

    started = time.monotonic()
    threading.Thread(target=pump, daemon=True).start()
    first = sock.recv(64)
    answered.set()
    seconds = time.monotonic() - started
    sock.close()
    return {"status": first.split(b" ")[1].decode() if first else "closed", "s": seconds, "mib": sent[0] / 2**20}


async def close_code(port: int, frames: list[str]) -> str:
    origin = f"http://127.0.0.1:{port}"
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws", origin=origin, max_size=None) as ws:
        await ws.recv()
        for frame in frames:
            await ws.send(frame)
        try:
            async with asyncio.timeout(5):
                while True:
                    await ws.recv()
        except websockets.ConnectionClosed as closed:
            return str(closed.rcvd.code) if closed.rcvd else "no close frame"
        except TimeoutError:
            return "none"


def measure(kind: str, env: dict, args) -> dict:
    port = free_port()
    process = subprocess.Popen(
        command(kind, port), cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_until(lambda: http_get(f"http://127.0.0.1:{port}/health")[0] == 200, timeout=60)
        asyncio.run(http_load(port, "/health", args.connections, 2))  # warm-up
        result = {path: asyncio.run(http_load(port, path, args.connections, args.seconds)) for path in ("/health", "/")}
        result["body"] = big_body(port)
        result["1009"] = asyncio.run(close_code(port, [json.dumps({"type": "ping", "pad": "x" * 70_000})]))
        result["1008"] = asyncio.run(close_code(port, ['{"type": "pong"}'] * 40))
        return result
    finally:
        stop(process)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    database = Path(tempfile.mkdtemp()) / "serve_bench.sqlite3"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "COINLINK_REQUIRE_SERVICES")}
    env.update(DATABASE_URL=f"sqlite:///{database}", LOG_LEVEL="warning", RATELIMIT_ENABLED="false")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True, capture_output=True
    )
    runs: dict[str, list[dict]] = {"uvicorn": [], "daphne": []}
    load_before = os.getloadavg()
    for _ in range(args.rounds):
        for kind in runs:
            runs[kind].append(measure(kind, env, args))
    print(f"{args.connections} keep-alive connections, {args.seconds:g} s per path, median of {args.rounds} rounds;")
    print(f"load average before / after: {load_before[0]:.2f} / {os.getloadavg()[0]:.2f}, {os.cpu_count()} cores")
    print("| server | /health req/s | p50 / p95 ms | / req/s | p50 / p95 ms | 50 MiB declared: 413 after "
          "| sent by then | oversized frame | flood |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---|---|")
    for kind, results in runs.items():
        cells = []
        for path in ("/health", "/"):
            best = sorted(results, key=lambda r: r[path]["rps"])[len(results) // 2][path]
            cells += [f"{best['rps']:,.0f}", f"{best['p50']:.1f} / {best['p95']:.1f}"]
        body = results[-1]["body"]
        cells += [
            f"{body['status']} in {body['s']:.2f} s",
            f"{body['mib']:.1f} MiB",
            results[-1]["1009"],
            results[-1]["1008"],
        ]
        print(f"| {kind} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
