"""REST hot-path benchmark: the cached ticker and price endpoints against a bare Django view.

    .venv/bin/python bench/rest_bench.py [--workers 5] [--connections 100] [--duration 20] [--write-docs]

What it does, in one run:
  1. migrates a dedicated PostgreSQL database (`coinlink_markets_bench`) and fills it with one real
     ingest cycle through the production code path (markets.services.market_ingest), fed by the
     repository's fake upstream (bench/fake_upstream.py: recorded CoinGecko/Coinbase body shapes,
     synthetic prices; never the real APIs); the snapshot lands in Redis (DB 3);
  2. starts gunicorn exactly as deploy/gunicorn.conf.py does (WSGI, sync workers, Prometheus
     multiprocess dir), with RATELIMIT_ENABLED=false (every wrk connection comes from 127.0.0.1,
     the per-IP limit would answer 429) and COINLINK_BENCH_VIEWS=1 (routes /api/bench/constant);
  3. runs wrk (keep-alive HTTP/1.1, 2 threads, N connections) against, in turn,
       /api/bench/constant          bare Django view, constant 2 kB JSON (the baseline)
       /api/v2/market/ticker        all 50 tickers, pre-encoded bytes from the snapshot (~16 kB)
       /api/v2/market/BTC/price     one pre-encoded ticker
     each after a short warm-up, and reads throughput and p50/p95/p99 from a wrk Lua report;
  4. prints a Markdown table, and with --write-docs replaces the `## REST hot path` section of
     docs/performance.md with it.
wrk and gunicorn share the machine's cores, as they would not in production; the baseline pays
the same, so the ratio is the fair number.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
DOCS = ROOT / "docs" / "performance.md"
SECTION = "## REST hot path"
TARGETS = [
    ("bare Django view (2 kB constant)", "/api/bench/constant"),
    ("GET /api/v2/market/ticker (50 tickers)", "/api/v2/market/ticker"),
    ("GET /api/v2/market/BTC/price", "/api/v2/market/BTC/price"),
]
LUA_REPORT = """
done = function(summary, latency, requests)
  local out = string.format('{"requests":%d,"duration_us":%d,"non2xx":%d,"errors":%d,' ..
    '"p50":%d,"p95":%d,"p99":%d,"max":%d}',
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max)
  io.write("WRK_JSON " .. out .. "\\n")
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status < 500:
                    return
        except Exception:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not come up")


def base_env(args, upstream_port: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=args.database_url,
        REDIS_URL=args.redis_url,
        COINLINK_ENV="development",
        DEBUG="false",
        RATELIMIT_ENABLED="false",
        COINLINK_BENCH_VIEWS="1",
        LOG_LEVEL=args.log_level,
        MARKET_QUOTES="usd",
        MARKET_STALE_SECONDS="3600",  # the bench runs longer than 3 polls without an ingest
        COINGECKO_BASE_URL=f"http://127.0.0.1:{upstream_port}/api/v3",
        COINBASE_EXCHANGE_BASE_URL=f"http://127.0.0.1:{upstream_port}/exchange",
        COINBASE_BASE_URL=f"http://127.0.0.1:{upstream_port}/coinbase",
        DJANGO_SETTINGS_MODULE="coinlink.settings",
    )
    return env


def prepare(args, env: dict[str, str]) -> str:
    """Create/migrate the bench database and run one real ingest; returns the ingest summary."""
    name = args.database_url.rsplit("/", 1)[1]
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", name], capture_output=True, check=False)
    subprocess.run([BIN / "python", "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    code = (
        "from markets.services import market_ingest; r = market_ingest(); "
        "print(f'stored={r.stored} skipped={r.skipped}')"
    )
    out = subprocess.run(
        [BIN / "python", "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip().splitlines()[-1]


def wrk(url: str, connections: int, duration: int, script: str) -> dict:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--timeout", "5s", "-s", script, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    report = json.loads(re.search(r"WRK_JSON (\{.*\})", out).group(1))
    report["rps"] = report["requests"] / (report["duration_us"] / 1e6)
    return report


def table(results: list[tuple[str, dict]], baseline: float) -> str:
    lines = [
        "| endpoint | req/s | vs bare view | p50 ms | p95 ms | p99 ms | max ms | non-2xx | socket errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, r in results:
        lines.append(
            f"| {label} | {r['rps']:,.0f} | {r['rps'] / baseline:.2f} | {r['p50'] / 1000:.1f} | "
            f"{r['p95'] / 1000:.1f} | {r['p99'] / 1000:.1f} | {r['max'] / 1000:.1f} | {r['non2xx']} | {r['errors']} |"
        )
    return "\n".join(lines)


def write_docs(text: str) -> None:
    """Replace our section of docs/performance.md (others own the other sections)."""
    current = DOCS.read_text() if DOCS.exists() else "# Performance\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(current):
        updated = pattern.sub(lambda _: text.rstrip() + "\n\n", current)
    else:
        updated = current.rstrip() + "\n\n" + text.rstrip() + "\n"
    DOCS.write_text(updated)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=5, help="gunicorn sync workers (deploy default: 2*cores+1)")
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--log-level", default="info", help="the app's LOG_LEVEL (info logs one line per request)")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/coinlink_markets_bench")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/3")
    parser.add_argument("--write-docs", action="store_true", help="replace the REST hot path section of docs")
    parser.add_argument("--notes", default="", help="extra Markdown appended to the docs section")
    args = parser.parse_args()

    upstream_port, port = free_port(), free_port()
    env = base_env(args, upstream_port)
    procs: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="coinlink-bench-") as tmp:
        lua = Path(tmp) / "report.lua"
        lua.write_text(LUA_REPORT)
        try:
            procs.append(
                subprocess.Popen(
                    [BIN / "python", "bench/fake_upstream.py", "--port", str(upstream_port)],
                    cwd=ROOT,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
            wait_http(f"http://127.0.0.1:{upstream_port}/api/v3/ping")
            ingest = prepare(args, env)
            print(f"ingest: {ingest}", flush=True)
            web_env = dict(env, HOST="127.0.0.1", PORT=str(port), WEB_CONCURRENCY=str(args.workers))
            web_env["PROMETHEUS_MULTIPROC_DIR"] = str(Path(tmp) / "prom")
            log = open(Path(tmp) / "gunicorn.log", "w")  # noqa: SIM115 - lives as long as the server
            procs.append(
                subprocess.Popen(
                    [BIN / "gunicorn", "coinlink.wsgi:application", "-c", "deploy/gunicorn.conf.py"],
                    cwd=ROOT,
                    env=web_env,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,
                )
            )
            base = f"http://127.0.0.1:{port}"
            wait_http(base + "/health")
            results = []
            load_before = Path("/proc/loadavg").read_text().split()[:3]
            for label, path in TARGETS:
                wrk(base + path, args.connections, args.warmup, str(lua))
                report = wrk(base + path, args.connections, args.duration, str(lua))
                print(f"{label}: {report['rps']:,.0f} req/s p99 {report['p99'] / 1000:.1f} ms", flush=True)
                results.append((label, report))
            load_after = Path("/proc/loadavg").read_text().split()[:3]
        finally:
            for proc in reversed(procs):
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(timeout=15)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    os.killpg(proc.pid, signal.SIGKILL)

    rows = table(results, results[0][1]["rps"])
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((ln.split(":", 1)[1].strip() for ln in cpuinfo if "model name" in ln), "?")
    section = (
        f"{SECTION}\n\n"
        f"Measured by `bench/rest_bench.py` on {time.strftime('%Y-%m-%d', time.gmtime())}: {os.cpu_count()} cores "
        f"({cpu}), Python {platform.python_version()}, gunicorn with {args.workers} sync workers "
        f"(deploy/gunicorn.conf.py) against PostgreSQL and Redis on loopback, `wrk -t2 -c{args.connections} "
        f"-d{args.duration}s` (keep-alive) on the same machine, after a {args.warmup} s warm-up per endpoint. "
        f"COINLINK_ENV=development with DEBUG off, LOG_LEVEL={args.log_level} (one access-log line per request), "
        f"**RATELIMIT_ENABLED=false** (all wrk connections share one IP; the per-IP limit of "
        f"RATELIMIT_MARKET would answer 429), COINLINK_BENCH_VIEWS=1 for the baseline view. "
        f"Data: one real ingest cycle ({ingest}) from bench/fake_upstream.py. Load average before/after the "
        f"run: {' '.join(load_before)} / {' '.join(load_after)} (other work on the machine shows up here).\n\n"
        f"{rows}\n\n"
        "Targets: cached ticker >= 3,000 req/s, >= 0.6 of the bare view, p99 < 50 ms at 100 clients.\n"
    )
    if args.notes:
        section += "\n" + Path(args.notes).read_text().strip() + "\n"
    print("\n" + section)
    if args.write_docs:
        write_docs(section)
    sys.exit(0)


if __name__ == "__main__":
    main()
