"""Bring up CoinLink's production topology on this machine, on loopback, for load tests.

    .venv/bin/python bench/stack.py up   --run-dir bench/runs/x [--fresh] [--poll-seconds 5]
    .venv/bin/python bench/stack.py down --run-dir bench/runs/x

`up` starts, each in its own process group, with the same commands as deploy/docker-entrypoint.sh:
  - the fake upstream (bench/fake_upstream.py)   CoinGecko/Coinbase over HTTP, prices moving
  - web:    gunicorn coinlink.wsgi, sync workers (deploy/gunicorn.conf.py)   HTTP API
  - ws:     uvicorn coinlink.asgi --workers 2 --ws websockets-sansio (no deflate)  /ws only
  - worker: celery -A coinlink worker --concurrency 2
  - beat:   celery -A coinlink beat (exactly one)
  - proxy:  nginx with deploy/nginx/coinlink.conf (market microcache) in front of web, when nginx is
            installed (--no-proxy: HTTP straight to gunicorn)
against the local PostgreSQL (database `coinlink_load`) and Redis (DB 7), COINLINK_ENV=production.
The proxy stands in for TLS by sending X-Forwarded-Proto: https; WebSockets go to uvicorn directly
(docs/performance.md says why). It writes <run dir>/stack.json (pids, ports, the
settings used) and waits until /health answers and the first ingest is in. `down` ends exactly
those process groups (TERM, then KILL after 15 s).

Load-test settings that differ from production, on purpose (docs/performance.md says so too):
  RATELIMIT_ENABLED=false   every simulated user comes from loopback; per-IP limits would trip
  BCRYPT_ROUNDS=4           sign-ups and sign-ins of thousands of load users; production uses 12+
  MARKET_POLL_SECONDS=5     so the feed moves often (production: 30)
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
ORIGIN = "https://coinlink.bench"


def _env(args, run_dir: Path) -> dict[str, str]:
    up = f"http://127.0.0.1:{args.upstream_port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COINLINK_", "DJANGO_", "DATABASE_", "REDIS_"))}
    env.update(
        COINLINK_ENV="production",
        SECRET_KEY=secrets.token_urlsafe(64),
        JWT_SIGNING_KEY=secrets.token_urlsafe(48),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{args.database}",
        REDIS_URL=args.redis_url,
        PUBLIC_ORIGINS=ORIGIN,
        FRONTEND_URL=ORIGIN,
        CORS_ALLOWED_ORIGINS=ORIGIN,
        SECURE_PROXY_SSL_HEADER="true",
        TRUSTED_PROXIES="127.0.0.1/32",
        RATELIMIT_ENABLED="false",
        BCRYPT_ROUNDS="4",
        MARKET_POLL_SECONDS=str(args.poll_seconds),
        COINGECKO_BASE_URL=f"{up}/api/v3",
        COINBASE_EXCHANGE_BASE_URL=f"{up}/exchange",
        LOG_LEVEL=args.log_level,
        LOG_FORMAT="json",
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONUNBUFFERED="1",
        HOST="127.0.0.1",
    )
    # Only gunicorn may see it: uvicorn reads WEB_CONCURRENCY as its --workers too, which the fake
    # upstream's in-process uvicorn.run() refuses.
    env.pop("WEB_CONCURRENCY", None)
    return env


def _start(name: str, cmd: list[str], env: dict, run_dir: Path, extra_env: dict | None = None) -> dict:
    role_env = dict(env)
    prom = run_dir / f"prom-{name}"
    prom.mkdir(exist_ok=True)
    role_env["PROMETHEUS_MULTIPROC_DIR"] = str(prom)
    role_env.update(extra_env or {})
    log = (run_dir / f"{name}.log").open("ab")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=role_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return {"name": name, "pid": proc.pid, "cmd": cmd}


def _get(url: str, timeout: float = 2.0, headers: dict | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers={"X-Forwarded-Proto": "https", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # loopback only
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def _wait(what: str, check, seconds: float) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise SystemExit(f"stack: {what} not ready after {seconds:.0f}s (see the logs in the run dir)")


def _psql(sql: str, db: str = "postgres") -> None:
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", db, "-qAt", "-c", sql], check=True)


def up(args) -> None:
    sys.path.insert(0, str(ROOT))  # run as a script, bench/ is not a package on the path
    from bench.ws_fanout import PRODUCTION_WS_FLAGS

    run_dir = Path(args.run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    if (run_dir / "stack.json").exists():
        raise SystemExit(f"stack: {run_dir}/stack.json exists; run `down` first")
    env = _env(args, run_dir)
    if args.fresh:
        _psql(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
        subprocess.run(["redis-cli", "-u", args.redis_url, "FLUSHDB"], check=True, capture_output=True)
    exists = subprocess.run(
        [
            "psql",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-qAt",
            "-c",
            f"select 1 from pg_database where datname = '{args.database}'",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not exists:
        _psql(f'CREATE DATABASE "{args.database}"')
    subprocess.run(
        [str(VENV_BIN / "python"), "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=(run_dir / "migrate.log").open("ab"),
        stderr=subprocess.STDOUT,
    )
    py = str(VENV_BIN / "python")
    procs = [
        _start("upstream", [py, "bench/fake_upstream.py", "--port", str(args.upstream_port)], env, run_dir),
        _start(
            "web",
            [
                str(VENV_BIN / "gunicorn"),
                "coinlink.wsgi:application",
                "--config",
                "deploy/gunicorn.conf.py",
                "--bind",
                f"127.0.0.1:{args.http_port}",
                "--bind",  # the probe listener (PROBE_PORT in compose and systemd)
                f"127.0.0.1:{args.probe_port}",
                "--control-socket",
                str(run_dir / "gunicorn.ctl"),
                "--backlog",
                "4096",
            ],
            env,
            run_dir,
            {"WEB_CONCURRENCY": str(args.web_workers)} if args.web_workers else None,
        ),
        _start(
            "ws",
            [
                str(VENV_BIN / "uvicorn"),
                "coinlink.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(args.ws_port),
                "--workers",  # as deploy/docker-entrypoint.sh: one process per core by default
                os.environ.get("WS_WORKERS", "2"),
                *PRODUCTION_WS_FLAGS,
                "--proxy-headers",
                "--forwarded-allow-ips",
                "127.0.0.1",
                "--no-access-log",
                "--timeout-graceful-shutdown",
                "20",
                "--backlog",
                "8192",
            ],
            env,
            run_dir,
        ),
        _start(
            "worker",
            [
                str(VENV_BIN / "celery"),
                "-A",
                "coinlink",
                "worker",
                "--loglevel",
                args.log_level,
                "--concurrency",
                str(args.celery_concurrency),
                "--without-gossip",
                "--without-mingle",
                "-n",
                f"bench@{os.uname().nodename}",
            ],
            env,
            run_dir,
        ),
        _start(
            "beat",
            [
                str(VENV_BIN / "celery"),
                "-A",
                "coinlink",
                "beat",
                "--loglevel",
                args.log_level,
                "--schedule",
                str(run_dir / "celerybeat-schedule"),
            ],
            env,
            run_dir,
        ),
    ]
    web_url = f"http://127.0.0.1:{args.http_port}"
    http_url = web_url
    if args.proxy:
        # The shipped nginx config (market microcache included) in front of gunicorn, as in compose;
        # it stands in for the TLS listener. /ws stays direct: see docs/performance.md.
        ports = {"web": args.http_port, "probe": args.probe_port, "ws": args.ws_port, "at": args.proxy_port}
        procs.append(_proxy("proxy", env, run_dir, **ports))
        http_url = f"http://127.0.0.1:{args.proxy_port}"
    floor = _start_floor(args, env, run_dir, procs) if args.floor else None
    public_env = {
        k: env[k]
        for k in (
            "COINLINK_ENV",
            "ALLOWED_HOSTS",
            "DATABASE_URL",
            "REDIS_URL",
            "PUBLIC_ORIGINS",
            "RATELIMIT_ENABLED",
            "BCRYPT_ROUNDS",
            "MARKET_POLL_SECONDS",
            "COINGECKO_BASE_URL",
            "COINBASE_EXCHANGE_BASE_URL",
            "LOG_LEVEL",
            "LOG_FORMAT",
            "SECURE_PROXY_SSL_HEADER",
        )
    }
    public_env["WEB_CONCURRENCY"] = str(args.web_workers or f"{os.cpu_count() + 1} (gunicorn.conf default)")
    public_env["CELERY_CONCURRENCY"] = str(args.celery_concurrency)
    state = {
        "run_dir": str(run_dir),
        "started_at": time.time(),
        "http": http_url,
        "web": web_url,
        "ws": f"ws://127.0.0.1:{args.ws_port}/ws",
        "origin": ORIGIN,
        "upstream": f"http://127.0.0.1:{args.upstream_port}",
        "database": args.database,
        "redis_url": args.redis_url,
        "procs": procs,
        "floor": floor,
        "settings": public_env,
    }
    (run_dir / "stack.json").write_text(json.dumps(state, indent=2))
    try:
        _wait("fake upstream", lambda: _get(f"{state['upstream']}/api/v3/ping")[0] == 200, 30)
        _wait("web /health", lambda: _get(f"{state['web']}/health")[0] == 200, 60)
        _wait("proxy", lambda: _get(f"{state['http']}/health")[0] == 200, 30)
        _wait("ws /health", lambda: _get(f"http://127.0.0.1:{args.ws_port}/health")[0] == 200, 60)
        _wait("first market ingest", lambda: _ticker_ready(state["http"]), args.ingest_wait)
        if floor:
            floor_auth = {"Authorization": f"Bearer {floor['token']}"}
            _wait("the floor", lambda: _get(f"{floor['http']}{floor['path']}", headers=floor_auth)[0] == 200, 60)
    except SystemExit:
        down_dir(run_dir)
        raise
    print(json.dumps({k: state[k] for k in ("http", "ws", "upstream", "run_dir")}))


def _proxy(name: str, env: dict, run_dir: Path, *, web: int, probe: int, ws: int, at: int) -> dict:
    """nginx with the shipped config (deploy/nginx/loopback.py), listening on `at`."""
    from deploy.nginx import loopback

    conf = loopback.render(
        run_dir / name,
        web_port=web,
        probe_port=probe,
        ws_port=ws,
        proxy_port=at,
        worker_processes="auto",
        worker_connections=8192,
        forwarded_proto="https",
    )
    return _start(name, ["nginx", "-p", str(run_dir / name), "-c", str(conf)], env, run_dir)


def _start_floor(args, env: dict, run_dir: Path, procs: list[dict]) -> dict:
    """The bare DRF floor (bench/floor/) served the way web is: the same gunicorn config and worker
    count, behind its own copy of the shipped nginx config, so the load test's bare mix and
    CoinLink's differ only in the application (docs/performance.md, "The SLA verdict as ratios")."""
    floor_env = {k: v for k, v in env.items() if k not in ("DJANGO_SETTINGS_MODULE",)}
    floor_env.update(
        DJANGO_SETTINGS_MODULE="bench.floor.settings",
        FLOOR_JWT_KEY=secrets.token_urlsafe(48),
        FLOOR_SECRET_KEY=secrets.token_urlsafe(48),
    )
    token = subprocess.run(
        [str(VENV_BIN / "python"), "bench/floor/worker.py", "token"],
        cwd=ROOT,
        env=floor_env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    procs.append(
        _start(
            "floor",
            [
                str(VENV_BIN / "gunicorn"),
                "bench.floor.wsgi:application",
                "--config",
                "deploy/gunicorn.conf.py",
                "--bind",
                f"127.0.0.1:{args.floor_port}",
                "--backlog",
                "4096",
            ],
            floor_env,
            run_dir,
            {"WEB_CONCURRENCY": str(args.web_workers)} if args.web_workers else None,
        )
    )
    url = f"http://127.0.0.1:{args.floor_port}"
    if args.proxy:
        port = args.floor_port
        procs.append(_proxy("floor-proxy", env, run_dir, web=port, probe=port, ws=port, at=args.floor_proxy_port))
        url = f"http://127.0.0.1:{args.floor_proxy_port}"
    return {"http": url, "path": "/floor/account", "token": token}


def _ticker_ready(base: str) -> bool:
    status, body = _get(f"{base}/api/v2/market/ticker?limit=1")
    if status != 200:
        return False
    try:
        return bool(json.loads(body).get("data"))
    except ValueError:
        return False


def down_dir(run_dir: Path) -> None:
    path = run_dir / "stack.json"
    if not path.exists():
        print(f"stack: nothing recorded in {run_dir}")
        return
    state = json.loads(path.read_text())
    alive = []
    for proc in reversed(state["procs"]):
        try:
            os.killpg(proc["pid"], signal.SIGTERM)  # the group we created with start_new_session
            alive.append(proc)
        except ProcessLookupError:
            pass
    deadline = time.time() + 15
    while alive and time.time() < deadline:
        alive = [p for p in alive if _group_alive(p["pid"])]
        time.sleep(0.3)
    for proc in alive:
        try:
            os.killpg(proc["pid"], signal.SIGKILL)
        except ProcessLookupError:
            pass
    path.rename(run_dir / "stack.stopped.json")


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up")
    p_up.add_argument("--run-dir", required=True)
    p_up.add_argument("--fresh", action="store_true", help="drop the load database and flush the Redis DB first")
    p_up.add_argument("--database", default="coinlink_load")
    p_up.add_argument("--redis-url", default="redis://127.0.0.1:6379/7")
    p_up.add_argument("--http-port", type=int, default=18000)
    p_up.add_argument("--ws-port", type=int, default=18001)
    p_up.add_argument("--probe-port", type=int, default=18002, help="gunicorn's probe listener")
    p_up.add_argument("--proxy-port", type=int, default=18080)
    p_up.add_argument(
        "--proxy", action=argparse.BooleanOptionalAction, default=shutil.which("nginx") is not None,
        help="HTTP through deploy/nginx (default when nginx is installed)",
    )  # fmt: skip
    p_up.add_argument("--upstream-port", type=int, default=18099)
    p_up.add_argument("--floor", action="store_true", help="also serve the bare DRF floor (bench/floor/)")
    p_up.add_argument("--floor-port", type=int, default=18010)
    p_up.add_argument("--floor-proxy-port", type=int, default=18081)
    p_up.add_argument("--poll-seconds", type=int, default=5)
    p_up.add_argument("--web-workers", type=int, default=0, help="gunicorn workers (default: gunicorn.conf.py's)")
    p_up.add_argument("--celery-concurrency", type=int, default=2)
    p_up.add_argument("--log-level", default="info")
    p_up.add_argument("--ingest-wait", type=float, default=90)
    p_down = sub.add_parser("down")
    p_down.add_argument("--run-dir", required=True)
    args = parser.parse_args()
    if args.command == "up":
        up(args)
    else:
        down_dir(Path(args.run_dir).resolve())


if __name__ == "__main__":
    sys.exit(main())
