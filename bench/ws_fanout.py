"""WebSocket fan-out benchmark: N clients on /ws while 20 prices change every second (see docs/performance.md).

For each server under test (uvicorn, daphne, and the minimal `websockets` baseline) and each N:
start the server (one process, Redis, loopback), connect N clients from several client processes,
then publish one cycle per second for --seconds through realtime.events.ticker_update_publish from a
separate process (observed_at embedded as the frame `timestamp`). Every client records per-frame
latency (frame timestamp -> receipt), seq gaps and missing cycles; the orchestrator samples the
server's RSS and CPU from /proc. Results are printed and written as JSON to bench/results/.

    .venv/bin/python bench/ws_fanout.py --clients 1000 5000 10000 --servers baseline uvicorn daphne

Live ticks (`--servers baseline uvicorn-stream`): for `uvicorn-stream` no publisher runs; the fake
Coinbase feed (tests/fake_coinbase_feed.py) sends 5 trades a second per product and one
`manage.py markets_stream` process publishes a flush a second, and each client measures from the
trade's `time` (the first ticker's `last_updated` in the frame) to receipt: tick-to-client latency.

Bounded: every run stops by itself after --seconds (+ connect and drain time). Loopback only.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import json
import os
import random
import resource
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: bench/ and the apps
from bench.wsraw import RawWebSocket

BASE_DIR = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
ORIGIN = "http://127.0.0.1:8000"
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/4")
DATABASE_URL = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/coinlink_realtime")
# The symbols every default client follows: the shipped catalogue's first 20 by rank.
TOP_20 = [
    asset["symbol"]
    for asset in sorted(
        json.loads((BASE_DIR / "markets/data/catalogue.json").read_text())["assets"],
        key=lambda asset: asset["rank"],
    )[:20]
]
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- client worker process --------------------------------------------------------------------
# bench/wsraw.py's minimal RFC 6455 client: the `websockets` client costs ~100-200 us of Python per
# received frame, which on this 2-core machine would make the load generator, not the server, the
# bottleneck at 10,000 sockets. This one reads only the tail of a ticker frame (`timestamp`, `seq`).
class _Client(RawWebSocket):
    def __init__(self, host: str, stats: dict, samples: array.array, window: dict, stamp: bytes):
        super().__init__(host, "/ws", ORIGIN)
        self.stats, self.samples, self.window, self.stamp = stats, samples, window, stamp
        self.last_seq: int | None = None
        self.received = 0

    def on_close(self, code: int) -> None:
        self.stats["dropped_connections"] += 1

    def on_text(self, payload: bytes) -> None:
        now = time.time()
        if b'"crypto_ticker_update"' not in payload[:40]:
            return
        seq = int(payload[payload.rindex(b'"seq":') + 6 : -1])
        if self.last_seq is not None and seq != self.last_seq + 1:
            self.stats["gaps"] += seq - self.last_seq - 1
        self.last_seq = seq
        if self.stamp == b"timestamp":  # the frame's: when the price reached the ingest
            start = payload.rindex(b'"timestamp":"') + 13
        else:  # the first ticker's trade time on the feed
            start = payload.find(b'"last_updated":"') + 16
        stamp = payload[start : payload.index(b'"', start)]
        sent = _STAMPS.get(stamp)
        if sent is None:
            sent = _STAMPS[stamp] = datetime.fromisoformat(stamp.decode()).timestamp()
        if self.window["start"] and sent >= self.window["start"]:
            self.samples.append(now - sent)
            self.received += 1


_STAMPS: dict[bytes, float] = {}


async def _worker(port: int, count: int, concurrency: int, stamp: bytes) -> None:
    stats = {"connected": 0, "failed": 0, "gaps": 0, "dropped_connections": 0}
    samples: array.array = array.array("d")
    window = {"start": 0.0}
    gate = asyncio.Semaphore(concurrency)
    protocols: list[_Client] = []
    loop = asyncio.get_running_loop()

    async def one():
        async with gate:
            try:
                _, protocol = await loop.create_connection(
                    lambda: _Client(f"127.0.0.1:{port}", stats, samples, window, stamp), "127.0.0.1", port
                )
                await asyncio.wait_for(protocol.opened, 60)
            except Exception as exc:
                stats["failed"] += 1
                errors = stats.setdefault("errors", {})
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                return
        stats["connected"] += 1
        protocols.append(protocol)

    await asyncio.gather(*(one() for _ in range(count)))
    print(f"READY {stats['connected']} {stats['failed']}", flush=True)
    line = await loop.run_in_executor(None, sys.stdin.readline)  # "START <epoch>"
    window["start"] = float(line.split()[1])
    await loop.run_in_executor(None, sys.stdin.readline)  # "STOP"
    received = [p.received for p in protocols]
    for protocol in protocols:
        protocol.open = False
        protocol.transport.close()
    await asyncio.sleep(0.5)
    path = tempfile.mktemp(prefix="wsbench-", suffix=".f64")
    with open(path, "wb") as fh:
        samples.tofile(fh)
    print("RESULT " + json.dumps({**stats, "received": received, "samples": path}), flush=True)


# --- publisher process ------------------------------------------------------------------------
def _publish(seconds: int) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coinlink.settings")
    import django

    django.setup()
    from coinlink.redis import get_redis
    from markets.selectors import asset_symbols_top
    from realtime import events

    top = list(asset_symbols_top(limit=20))  # also warms the DB and cache connections, as a running ingest has them
    get_redis().ping()
    prices = {s: 100.0 * (i + 1) for i, s in enumerate(TOP_20)}
    start = time.time()
    for cycle in range(seconds):
        time.sleep(max(0.0, start + cycle - time.time()))
        for symbol in prices:
            prices[symbol] = round(prices[symbol] * (1 + random.uniform(-0.001, 0.001)), 6)
        tickers = [
            {
                "symbol": s,
                "name": s.title(),
                "price": p,
                "change_24h": 1.25,
                "change_percent_24h": 0.42,
                "volume_24h": 123456789.0,
                "market_cap": 987654321000.0,
                "rank": i + 1,
                "last_updated": datetime.now().astimezone().isoformat(),
                "source": "coingecko",
                "stale": False,
            }
            for i, (s, p) in enumerate(prices.items())
        ]
        events.ticker_update_publish(quote="usd", tickers=tickers, observed_at=time.time(), top=top)
    print(f"PUBLISHED {seconds}", flush=True)


# --- live ticks: the fake Coinbase feed and one streamer process ------------------------------
def _stream(seconds: int) -> None:
    """`seconds` of live ticks: every product the streamer subscribes to trades 5 times a second."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coinlink.settings")
    import django

    django.setup()
    from markets.stream.publish import stream_products
    from tests.fake_coinbase_feed import FakeCoinbaseFeed

    products = list(stream_products())
    with FakeCoinbaseFeed(products=products) as feed:
        env = {**_server_env(), "COINBASE_STREAM_URL": feed.url, "MARKET_STREAM_FLUSH_MS": "1000"}
        streamer = subprocess.Popen(
            [PYTHON, "manage.py", "markets_stream"], cwd=BASE_DIR, env=env, preexec_fn=_pin(CLIENT_CPUS)
        )
        try:
            deadline = time.monotonic() + 30
            while not feed.subscribed() and time.monotonic() < deadline:
                time.sleep(0.1)
            feed.stream(5.0 * len(products), products)
            time.sleep(seconds)
        finally:
            streamer.terminate()
            streamer.wait(15)


# --- orchestrator -----------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# With --pin the server gets core 0 and the load generator (clients, publisher) core 1; by default
# all share both cores, like everything else on this machine.
SERVER_CPUS, CLIENT_CPUS = {0}, {1}


def _pin(cpus: set[int]):
    if not PIN or len(os.sched_getaffinity(0)) < 2:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


PIN = "--pin" in sys.argv


def _server_env() -> dict:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "coinlink.settings",
        "REDIS_URL": REDIS_URL,
        "DATABASE_URL": DATABASE_URL,
        "WS_MAX_PER_IP": "1000000",
        "WS_ALLOWED_ORIGINS": ORIGIN,
        "LOG_LEVEL": "warning",
    }


# Extra uvicorn flags for an experiment (--uvicorn-args); recorded in each result.
# How production's uvicorn serves /ws (deploy/docker-entrypoint.sh, the systemd unit, docs/realtime.md;
# tests/coinlink/test_deploy_files.py keeps them equal); bench/stack.py starts its ws server with them too.
PRODUCTION_WS_FLAGS = [
    *("--ws", "websockets-sansio", "--ws-per-message-deflate", "false", "--ws-max-size", "65536"),
    *("--ws-ping-interval", "60", "--ws-ping-timeout", "30"),  # the transport keepalive
]
UVICORN_EXTRA: list[str] = []


def server_command(kind: str, port: int) -> list[str]:
    if kind == "uvicorn-2w":  # two worker processes sharing the port, each with its own hub
        return [*server_command("uvicorn", port), "--workers", "2"]
    if kind in ("uvicorn", "uvicorn-stream"):
        return [
            PYTHON,
            "-m",
            "uvicorn",
            "coinlink.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
            *PRODUCTION_WS_FLAGS,
            "--backlog",
            "4096",
            *UVICORN_EXTRA,
        ]
    if kind == "asgi-floor":
        return [
            PYTHON, "-m", "uvicorn", "bench.ws_asgi_floor:app", "--host", "127.0.0.1", "--port", str(port),
            "--log-level", "warning", "--no-access-log", "--ws-per-message-deflate", "false", "--backlog", "4096",
        ]  # fmt: skip
    if kind == "daphne":
        return [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "-v", "0", "coinlink.asgi:application"]
    return [PYTHON, "-m", "bench.ws_baseline_server", "--port", str(port), "--redis", REDIS_URL]


def _proc_sample(pid: int) -> tuple[float, int]:
    """(cpu seconds, rss bytes) of a process and its children (uvicorn --workers)."""
    cpu, rss = _one_sample(pid)
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            children = [int(c) for c in fh.read().split()]
    except OSError:
        children = []
    for child in children:
        child_cpu, child_rss = _proc_sample(child)
        cpu, rss = cpu + child_cpu, rss + child_rss
    return cpu, rss


def _one_sample(pid: int) -> tuple[float, int]:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
    with open(f"/proc/{pid}/statm") as fh:
        rss = int(fh.read().split()[1]) * resource.getpagesize()
    return cpu, rss


def _wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"server on {port} did not start")


def _dropped_frames(port: int) -> float | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except Exception:
        return None
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("coinlink_ws_frames_dropped_total{")
    )


def run_one(kind: str, clients: int, seconds: int, procs: int, concurrency: int, profile: str | None = None) -> dict:
    port = _free_port()
    stamp = "last_updated" if kind == "uvicorn-stream" else "timestamp"
    server = subprocess.Popen(server_command(kind, port), cwd=BASE_DIR, env=_server_env(), preexec_fn=_pin(SERVER_CPUS))
    try:
        _wait_port(port)
        time.sleep(3.0 if kind == "uvicorn-2w" else 1.0)
        cpu0, rss0 = _proc_sample(server.pid)
        t_connect = time.monotonic()
        workers = []
        per = [clients // procs + (1 if i < clients % procs else 0) for i in range(procs)]
        for count in per:
            workers.append(
                subprocess.Popen(
                    [PYTHON, __file__, "worker", str(port), str(count), str(concurrency), stamp],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                    cwd=BASE_DIR,
                    preexec_fn=_pin(CLIENT_CPUS),
                )
            )
        connected = failed = 0
        for worker in workers:
            line = worker.stdout.readline().split()
            if not line or line[0] != "READY":
                raise RuntimeError(f"client worker failed: {line}")
            connected, failed = connected + int(line[1]), failed + int(line[2])
        connect_seconds = time.monotonic() - t_connect
        time.sleep(2.0)
        cpu1, rss1 = _proc_sample(server.pid)
        clients_cpu1 = sum(_proc_sample(w.pid)[0] for w in workers)
        window_start = time.time()
        spy = None
        if profile:
            spy = subprocess.Popen(
                [
                    str(Path(PYTHON).parent / "py-spy"),
                    "record",
                    "-p",
                    str(server.pid),
                    "-d",
                    str(seconds),
                    "-r",
                    "200",
                    "--format",
                    "raw",
                    "-o",
                    f"{profile}/{kind}-{clients}.txt",
                    "--nonblocking",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        for worker in workers:
            worker.stdin.write(f"START {window_start}\n")
            worker.stdin.flush()
        if kind == "uvicorn-stream":
            _stream(seconds)
        else:
            publisher = subprocess.run(
                [PYTHON, __file__, "publish", str(seconds)],
                cwd=BASE_DIR,
                env=_server_env(),
                capture_output=True,
                text=True,
                timeout=seconds + 60,
                preexec_fn=_pin(CLIENT_CPUS),
            )
            if publisher.returncode != 0:
                raise RuntimeError(publisher.stderr[-2000:])
        time.sleep(3.0)
        cpu2, rss2 = _proc_sample(server.pid)
        clients_cpu2 = sum(_proc_sample(w.pid)[0] for w in workers)
        if spy:
            spy.wait(30)
        dropped = _dropped_frames(port) if kind in ("uvicorn", "uvicorn-2w", "uvicorn-stream", "daphne") else 0.0
        results = []
        for worker in workers:
            worker.stdin.write("STOP\n")
            worker.stdin.flush()
        for worker in workers:
            for line in worker.stdout:
                if line.startswith("RESULT "):
                    results.append(json.loads(line[7:]))
                    break
            worker.wait(60)
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
    samples = array.array("d")
    for result in results:
        with open(result["samples"], "rb") as fh:
            samples.frombytes(fh.read())
        os.unlink(result["samples"])
    ordered = sorted(samples)

    def pct(p: float) -> float | None:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000, 1) if ordered else None

    received = [r for result in results for r in result["received"]]
    missing = sum(max(0, seconds - r) for r in received)
    return {
        "server": kind,
        "server_args": UVICORN_EXTRA if kind.startswith("uvicorn") else [],
        "clients": clients,
        "connected": connected,
        "handshakes_failed": failed,
        "connect_seconds": round(connect_seconds, 1),
        "cycles": seconds,
        "frames_expected": seconds * connected,
        "frames_received": len(samples),
        "frames_missing": missing,
        "seq_gaps": sum(r["gaps"] for r in results),
        "connections_dropped": sum(r["dropped_connections"] for r in results),
        "server_frames_dropped": dropped,
        "latency_ms": {"p50": pct(0.50), "p95": pct(0.95), "p99": pct(0.99), "max": pct(1.0)},
        "server_rss_mb": {
            "idle": round(rss0 / 2**20, 1),
            "connected": round(rss1 / 2**20, 1),
            "end": round(rss2 / 2**20, 1),
        },
        "server_kb_per_socket": round((rss1 - rss0) / 1024 / max(1, connected), 1),
        "server_cpu_pct_connect": round(100 * (cpu1 - cpu0) / max(0.001, connect_seconds + 2.0), 1),
        "server_cpu_pct_publish": round(100 * (cpu2 - cpu1) / (seconds + 3.0), 1),
        "clients_cpu_pct_publish": round(100 * (clients_cpu2 - clients_cpu1) / (seconds + 3.0), 1),
        "errors": {k: v for r in results for k, v in r.get("errors", {}).items()},
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        import uvloop

        uvloop.run(_worker(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5].encode()))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "publish":
        _publish(int(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, nargs="+", default=[1000])
    parser.add_argument("--servers", nargs="+", default=["baseline", "uvicorn", "daphne"])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--procs", type=int, default=4, help="client processes")
    parser.add_argument("--concurrency", type=int, default=200, help="handshakes in flight per client process")
    parser.add_argument("--pin", action="store_true", help="pin the server to core 0 and the load generator to core 1")
    parser.add_argument("--profile", help="directory for py-spy collapsed stacks of each server run")
    parser.add_argument("--uvicorn-args", default="", help="extra flags for the uvicorn kinds, e.g. '--loop asyncio'")
    parser.add_argument("--out", default=str(BASE_DIR / "bench" / "results" / "ws_fanout.json"))
    args = parser.parse_args()
    UVICORN_EXTRA.extend(args.uvicorn_args.split())
    runs = []
    for clients in args.clients:
        for kind in args.servers:
            result = run_one(kind, clients, args.seconds, args.procs, args.concurrency, args.profile)
            runs.append(result)
            print(json.dumps(result), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"machine": f"{os.cpu_count()} cores", "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
