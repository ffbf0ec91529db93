"""REST hot-path benchmark: the cached ticker and price endpoints against a bare Django view.

    .venv/bin/python bench/rest_bench.py [--workers 5] [--connections 100] [--duration 10] [--rounds 3]
        [--nice -10] [--write-docs] [--notes bench/rest_bench_notes.md]

What it does, in one run:
  1. migrates a dedicated PostgreSQL database (`coinlink_markets_bench`) and fills it with one real
     ingest cycle through the production code path (markets.services.market_ingest), fed by the
     repository's fake upstream (bench/fake_upstream.py: recorded CoinGecko/Coinbase body shapes,
     synthetic prices; never the real APIs); the snapshot lands in Redis (DB 3);
  2. starts gunicorn exactly as deploy/gunicorn.conf.py does (WSGI, sync workers, Prometheus
     multiprocess dir), with RATELIMIT_ENABLED=false (every wrk connection comes from 127.0.0.1,
     the per-IP limit would answer 429) and DJANGO_SETTINGS_MODULE=bench.settings (the product's
     settings with bench/urls.py, which adds /api/bench/constant in front of the product's URLs),
     and a second identical server with the per-IP guard ON (RATELIMIT_MARKET so high it never
     trips), so the cost of counting shows;
  3. runs wrk (2 threads, N connections; gunicorn's sync workers close each connection) round-robin
     over, --rounds times:
       /api/bench/constant          bare Django view, constant 2 kB JSON (the baseline)
       /api/v2/market/ticker        all 50 tickers, pre-encoded bytes from the snapshot (12.6 kB)
       /api/v2/market/BTC/price     one pre-encoded ticker
       /api/v2/market/ticker        on the server with the guard counting
     and reports the median pass per endpoint (throughput, p50/p95/p99 from a wrk Lua report);
     then measures CPU time per request in-process (no sockets) for the same views;
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
import shutil
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
PROXIED = "via nginx: "
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
        LOG_LEVEL=args.log_level,
        MARKET_QUOTES="usd",
        MARKET_STALE_SECONDS="3600",  # the bench runs longer than 3 polls without an ingest
        COINGECKO_BASE_URL=f"http://127.0.0.1:{upstream_port}/api/v3",
        COINBASE_EXCHANGE_BASE_URL=f"http://127.0.0.1:{upstream_port}/exchange",
        DJANGO_SETTINGS_MODULE="bench.settings",
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


def wrk(url: str, connections: int, duration: int, script: str, nice: int = 0) -> dict:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--timeout", "5s", "-s", script, url]
    out = subprocess.run(
        ["nice", "-n", str(nice), *command] if nice else command,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    report = json.loads(re.search(r"WRK_JSON (\{.*\})", out).group(1))
    report["rps"] = report["requests"] / (report["duration_us"] / 1e6)
    return report


def table(results: list[tuple[str, dict]], baselines: dict[str, float]) -> str:
    """`baselines`: label prefix -> the bare view's req/s that rows with that prefix are compared with."""
    lines = [
        "| endpoint | req/s (median run) | req/s min-max | vs bare view | p50 ms | p95 ms | p99 ms | max ms "
        "| non-2xx | socket errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, r in results:
        baseline = next(rps for prefix, rps in baselines.items() if label.startswith(prefix))
        lines.append(
            f"| {label} | {r['rps']:,.0f} | {r['rps_min']:,.0f}-{r['rps_max']:,.0f} | {r['rps'] / baseline:.2f} | "
            f"{r['p50'] / 1000:.1f} | "
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


def cpu_per_request(paths: list[str], rounds: int) -> dict[str, float]:
    """In-process: CPU microseconds per request through the full WSGI stack (middleware included, no
    socket), from time.process_time, so other work on the machine barely skews it."""
    import io

    from django.core.wsgi import get_wsgi_application

    app = get_wsgi_application()

    def environ(path: str) -> dict:
        return {
            "REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000", "HTTP_HOST": "127.0.0.1:8000", "REMOTE_ADDR": "127.0.0.1",
            "wsgi.input": io.BytesIO(b""), "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr,
            "SERVER_PROTOCOL": "HTTP/1.1",
        }  # fmt: skip

    def start_response(status, headers, exc_info=None):
        assert status.startswith("200"), status

    out = {}
    for path in paths:
        for _ in range(200):
            b"".join(app(environ(path), start_response))
        started = time.process_time()
        for _ in range(rounds):
            b"".join(app(environ(path), start_response))
        out[path] = (time.process_time() - started) / rounds * 1e6
    return out


def cpu_table(env: dict[str, str], args) -> str:
    code = (
        "import json, sys; sys.path.insert(0, 'bench'); import django; django.setup(); import rest_bench; "
        f"print('CPU_JSON', json.dumps(rest_bench.cpu_per_request({[p for _, p in TARGETS]!r}, {args.cpu_rounds})))"
    )
    lines = []
    for label, extra in (("rate limit off", {}), ("rate limit on", {"RATELIMIT_ENABLED": "true"})):
        child_env = dict(env, **extra, RATELIMIT_MARKET="1000000000/m", RATELIMIT_DEFAULT="1000000000/m")
        command = [str(BIN / "python"), "-c", code]
        out = subprocess.run(
            ["nice", "-n", str(args.nice), *command] if args.nice else command,
            cwd=ROOT, env=child_env, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        cpu = json.loads(re.search(r"CPU_JSON (\{.*\})", out).group(1))
        lines.append((label, cpu))
    header = "| CPU per request (in-process WSGI, µs) | " + " | ".join(lbl for lbl, _ in TARGETS) + " |"
    rows = [header, "|---|" + "---:|" * len(TARGETS)]
    for label, cpu in lines:
        rows.append(f"| {label} | " + " | ".join(f"{cpu[p]:.0f}" for _, p in TARGETS) + " |")
    return "\n".join(rows)


def start_server(env: dict[str, str], args, port: int, tmp: str, name: str) -> subprocess.Popen:
    web_env = dict(env, HOST="127.0.0.1", PORT=str(port), WEB_CONCURRENCY=str(args.workers))
    web_env["PROMETHEUS_MULTIPROC_DIR"] = str(Path(tmp) / f"prom-{name}")
    log = open(Path(tmp) / f"gunicorn-{name}.log", "w")  # noqa: SIM115 - lives as long as the server
    command = [str(BIN / "gunicorn"), "coinlink.wsgi:application", "-c", "deploy/gunicorn.conf.py"]
    if args.nice:
        command = ["nice", "-n", str(args.nice), *command]
    proc = subprocess.Popen(command, cwd=ROOT, env=web_env, stdout=log, stderr=log, start_new_session=True)
    wait_http(f"http://127.0.0.1:{port}/health")
    return proc


def stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def measure(targets: list[tuple[str, str]], args, lua: str) -> list[tuple[str, dict]]:
    """Round-robin over the targets `--rounds` times (each run `--duration` s), so bursts of other work on
    the machine hit every endpoint alike; per endpoint: the median run, plus the spread of req/s."""
    for _, url in targets:
        wrk(url, args.connections, args.warmup, lua, args.nice)
    runs: dict[str, list[dict]] = {label: [] for label, _ in targets}
    for round_no in range(args.rounds):
        for label, url in targets:
            report = wrk(url, args.connections, args.duration, lua, args.nice)
            runs[label].append(report)
            rps, p99 = report["rps"], report["p99"] / 1000
            print(f"round {round_no + 1} {label}: {rps:,.0f} req/s p99 {p99:.1f} ms", flush=True)
    results = []
    for label, _ in targets:
        ordered = sorted(runs[label], key=lambda r: r["rps"])
        median = dict(ordered[len(ordered) // 2])
        median["rps_min"], median["rps_max"] = ordered[0]["rps"], ordered[-1]["rps"]
        median["non2xx"] = sum(r["non2xx"] for r in ordered)
        median["errors"] = sum(r["errors"] for r in ordered)
        results.append((label, median))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=5, help="gunicorn sync workers (deploy default: 2*cores+1)")
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="round-robin passes over the endpoints")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--log-level", default="info", help="the app's LOG_LEVEL (info logs one line per request)")
    parser.add_argument("--cpu-rounds", type=int, default=3000, help="requests per endpoint for the CPU table")
    parser.add_argument("--nice", type=int, default=0, help="run gunicorn and wrk at this nice level (e.g. -10)")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/coinlink_markets_bench")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/3")
    parser.add_argument(
        "--proxy", action=argparse.BooleanOptionalAction, default=shutil.which("nginx") is not None,
        help="also measure through deploy/nginx (market microcache) in front of the first server",
    )  # fmt: skip
    parser.add_argument("--write-docs", action="store_true", help="replace the REST hot path section of docs")
    parser.add_argument("--notes", default="", help="a Markdown file appended to the docs section")
    args = parser.parse_args()

    upstream_port, port = free_port(), free_port()
    env = base_env(args, upstream_port)
    upstream = None
    with tempfile.TemporaryDirectory(prefix="coinlink-bench-") as tmp:
        lua = str(Path(tmp) / "report.lua")
        Path(lua).write_text(LUA_REPORT)
        try:
            upstream = subprocess.Popen(
                [BIN / "python", "bench/fake_upstream.py", "--port", str(upstream_port)],
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            wait_http(f"http://127.0.0.1:{upstream_port}/api/v3/ping")
            ingest = prepare(args, env)
            print(f"ingest: {ingest}", flush=True)
            load_before = Path("/proc/loadavg").read_text().split()[:3]
            # A second server with the per-IP guard counting (limit set so high it never trips).
            limited_env = dict(env, RATELIMIT_ENABLED="true", RATELIMIT_MARKET="1000000000/m")
            limited_port = free_port()
            servers = [start_server(env, args, port, tmp, "plain")]
            try:
                servers.append(start_server(limited_env, args, limited_port, tmp, "ratelimit"))
                targets = [(label, f"http://127.0.0.1:{port}{path}") for label, path in TARGETS]
                targets.append(
                    (
                        "GET /api/v2/market/ticker, rate limit ON (counted, never trips)",
                        f"http://127.0.0.1:{limited_port}/api/v2/market/ticker",
                    )
                )
                if args.proxy:
                    sys.path.insert(0, str(ROOT))  # run as a script, bench/ is not a package on the path
                    from deploy.nginx import loopback

                    # The shipped nginx config in front of the first server: the production path.
                    proxy_port = free_port()
                    servers.append(
                        loopback.start(
                            Path(tmp) / "nginx", web_port=port, ws_port=free_port(), proxy_port=proxy_port,
                            worker_processes="auto",
                        )
                    )  # fmt: skip
                    wait_http(f"http://127.0.0.1:{proxy_port}/proxy-health")
                    proxied = f"http://127.0.0.1:{proxy_port}"
                    targets += [(f"{PROXIED}{label}", f"{proxied}{path}") for label, path in TARGETS]
                results = measure(targets, args, lua)
            finally:
                for server in servers:
                    stop(server)
            load_after = Path("/proc/loadavg").read_text().split()[:3]
            recycled = sum(log.read_text().count("Autorestarting worker") for log in Path(tmp).glob("gunicorn-*.log"))
            cpu_rows = cpu_table(env, args)
            print(cpu_rows, flush=True)
        finally:
            if upstream is not None:
                stop(upstream)

    by_label = dict(results)
    baselines = {PROXIED: by_label.get(PROXIED + TARGETS[0][0], {}).get("rps", 0.0), "": by_label[TARGETS[0][0]]["rps"]}
    rows = table(results, baselines)
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu_model = next((ln.split(":", 1)[1].strip() for ln in cpuinfo if "model name" in ln), "?")
    nice = f" Server and wrk ran at nice {args.nice} (the machine was shared with other work)." if args.nice else ""
    section = (
        f"{SECTION}\n\n"
        f"Measured by `bench/rest_bench.py` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: "
        f"{os.cpu_count()} cores ({cpu_model}), Python {platform.python_version()}, gunicorn with {args.workers} sync "
        f"workers (deploy/gunicorn.conf.py) against PostgreSQL and Redis on loopback, `wrk -t2 -c{args.connections} "
        f"-d{args.duration}s` on the same machine, {args.rounds} round-robin passes over the endpoints after a "
        f"{args.warmup} s warm-up each; the row is the median pass (latencies from that pass). "
        f"COINLINK_ENV=development with DEBUG off, LOG_LEVEL={args.log_level} (one access-log line per request), "
        f"**RATELIMIT_ENABLED=false** for the first three rows (all wrk connections share one IP, so the per-IP "
        f"limit RATELIMIT_MARKET would answer 429); the fourth row runs with the guard on and a limit too high to "
        f"trip, to show what counting costs. The `via nginx` rows go through the shipped deploy/nginx config "
        f"(worker_processes auto; market microcache) in front of the first server, and are compared with the bare "
        f"view through the same proxy. bench.settings routes the baseline view. Data: one real "
        f"ingest cycle ({ingest}) from bench/fake_upstream.py. Load average before/after: "
        f"{' '.join(load_before)} / {' '.join(load_after)}.{nice} Workers recycled by gunicorn's max_requests "
        f"during the run: {recycled}.\n\n"
        f"{rows}\n\n"
        "The same requests without sockets or other processes in the way: CPU time per request through the whole "
        "WSGI stack (every middleware, the access log), measured in one process with `time.process_time` "
        f"over {args.cpu_rounds} requests each (2 cores / this = the CPU-bound ceiling in req/s):\n\n"
        f"{cpu_rows}\n\n"
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
