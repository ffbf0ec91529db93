"""Live-tick costs (docs/performance.md, "Live ticks"): the streamer's CPU at a given feed rate, and
alert evaluation per flush with 100,000 active alerts.

    DATABASE_URL=postgres://... REDIS_URL=redis://... .venv/bin/python bench/stream_bench.py cpu --rate 500
    DATABASE_URL=postgres://... REDIS_URL=redis://... .venv/bin/python bench/stream_bench.py alerts

`cpu`: the fake Coinbase feed (tests/fake_coinbase_feed.py, in this process) sends `--rate` trades a
second spread over every product the catalogue subscribes to; one `manage.py markets_stream` process
reads it, coalesces, publishes a flush a second (snapshot, /ws publish, alert task enqueue) and
writes rows once per poll period. Its CPU is read from /proc over `--seconds`, after a warm-up.

`alerts`: `--alerts` active alerts (bench/alerts_bench.py's mix of conditions and users) over 50
assets; every second a flush moves `--changing` of them by up to +/- `--move` and
`notifications.evaluation.alerts_evaluate` runs on those only, with the previous flush's prices as
previous, as the worker does for a stream flush. Reported: this process's CPU and the PostgreSQL
backend's (same machine), each as a share of one core over the wall time.
Needs a migrated PostgreSQL database; loopback only; everything it creates is removed at the end.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coinlink.settings")
BASE_DIR = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _load() -> str:
    with open("/proc/loadavg") as fh:
        return fh.read().split()[0]


def _received(port: int) -> float:
    """Ticker messages the streamer has taken in, from its metrics port."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith('coinlink_market_stream_messages_total{type="ticker"}'):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def streamer_cpu(rate: float, seconds: int, warmup: int) -> None:
    import django

    django.setup()
    from markets.catalogue import catalogue_load
    from markets.stream.publish import stream_products
    from tests.fake_coinbase_feed import FakeCoinbaseFeed

    catalogue_load()
    products = list(stream_products())
    with FakeCoinbaseFeed(products=products) as feed:
        port = _free_port()
        env = {
            **os.environ,
            "COINBASE_STREAM_URL": feed.url,
            "LOG_LEVEL": "warning",
            "MARKET_STREAM_METRICS_PORT": str(port),
            "MARKET_STREAM_METRICS_ADDR": "127.0.0.1",
        }
        command = [sys.executable, "manage.py", "markets_stream"]
        streamer = subprocess.Popen(command, cwd=BASE_DIR, env=env)
        try:
            deadline = time.monotonic() + 30
            while not feed.subscribed() and time.monotonic() < deadline:
                time.sleep(0.1)
            feed.stream(rate, products)
            time.sleep(warmup)
            cpu0, wall0, load0, got0 = _cpu_seconds(streamer.pid), time.monotonic(), _load(), _received(port)
            time.sleep(seconds)
            cpu1, wall1, got1 = _cpu_seconds(streamer.pid), time.monotonic(), _received(port)
        finally:
            streamer.terminate()
            streamer.wait(15)
    share, wall = (cpu1 - cpu0) / (wall1 - wall0), wall1 - wall0
    print(
        f"streamer at {rate:.0f} trades/s asked, {(got1 - got0) / wall:.0f}/s received, over {len(products)} "
        f"products, {seconds} s after {warmup} s warm-up: "
        f"{share:.1%} of one core ({cpu1 - cpu0:.2f} CPU s); load average {load0} at the start (2 cores)"
    )


def alerts_per_flush(alerts: int, changing: int, move: float, seconds: int, seed: int) -> None:
    import django

    django.setup()
    from django.db import connection

    from bench.alerts_bench import market, setup, teardown
    from notifications import evaluation

    rng = random.Random(seed)
    assets = market(rng, 50)
    setup(rng, alerts, assets)
    prices = {a["symbol"]: a["price"] for a in assets}
    changes = {a["symbol"]: a["change"] for a in assets}
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    fired, evaluated = 0, 0
    try:
        cpu0, pg0, wall0, load0 = time.process_time(), _cpu_seconds(backend), time.monotonic(), _load()
        for flush in range(seconds):
            time.sleep(max(0.0, wall0 + flush - time.monotonic()))
            moved = rng.sample(sorted(prices), changing)
            previous = {s: str(prices[s]) for s in moved}
            for symbol in moved:
                factor = Decimal(str(1 + rng.uniform(-move, move)))
                prices[symbol] = (prices[symbol] * factor).quantize(Decimal("1e-8"))
            rows = [{"symbol": s, "price": str(prices[s]), "change_percent_24h": str(changes[s])} for s in moved]
            fired += evaluation.alerts_evaluate(quote="usd", prices=rows, previous_prices=previous)
            evaluated += 1
        cpu1, pg1, wall1 = time.process_time(), _cpu_seconds(backend), time.monotonic()
    finally:
        teardown()
    wall = wall1 - wall0
    print(
        f"{alerts} active alerts, {changing} symbols changing per flush (moves up to +/-{move:.2%}), "
        f"{evaluated} flushes in {wall:.1f} s, {fired} fired: evaluator {(cpu1 - cpu0) / wall:.1%} of one core, "
        f"PostgreSQL backend {(pg1 - pg0) / wall:.1%}; load average {load0} at the start (2 cores)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    cpu = sub.add_parser("cpu")
    cpu.add_argument("--rate", type=float, default=500.0)
    cpu.add_argument("--seconds", type=int, default=60)
    cpu.add_argument("--warmup", type=int, default=10)
    alerts = sub.add_parser("alerts")
    alerts.add_argument("--alerts", type=int, default=100_000)
    alerts.add_argument("--changing", type=int, default=20)
    alerts.add_argument("--move", type=float, default=0.002)
    alerts.add_argument("--seconds", type=int, default=60)
    alerts.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.what == "cpu":
        streamer_cpu(args.rate, args.seconds, args.warmup)
    else:
        alerts_per_flush(args.alerts, args.changing, args.move, args.seconds, args.seed)


if __name__ == "__main__":
    main()
