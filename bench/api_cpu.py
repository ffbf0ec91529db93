"""CPU and queries per request of the authenticated endpoints the mixed load test calls, and of one
alert evaluation cycle (the Celery side's `alerts_claim`).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/coinlink_api_cpu REDIS_URL=redis://127.0.0.1:6379/5 \\
        flock /tmp/coinlink-bench.lock .venv/bin/python bench/api_cpu.py [--rounds 300] [--cycles 30]

In-process, no sockets: every request goes through the full WSGI stack (all middleware, DRF,
authentication, the view, the access log) as gunicorn's sync worker would run it, against real
PostgreSQL and Redis, with the settings the load test uses (COINLINK_ENV=production, rate limits
off, BCRYPT_ROUNDS=4, JSON logs, Prometheus multiprocess mode; the log goes to /dev/null). CPU is
`time.process_time` around each call, so other work on the machine barely skews it; queries are
counted with a connection execute wrapper.

One signed-in user with 60 notifications and 10 alerts runs `--rounds` rounds of the load test's
REST actions (after 20 warm-up rounds): notifications list and unread count, mark one read,
alerts list, create and delete, profile, preferences, verify, token refresh, then logout and a
new login (so the user always has one live session, as in the load test). Then `--cycles` alert
evaluation cycles over 50 assets with 2,000 active alerts of 100 users, 50 of which fire per
cycle (they are re-armed between cycles, untimed).

The floor: bench/floor/ is a minimal Django project (no apps, no middleware) whose one DRF view
checks an HS256 JWT with PyJWT, reads the session from Redis with redis-py and runs one primary-key
query, the least a signed-in call can cost. It runs in its own process, measured the same way
between the `--blocks` blocks of rounds (and after the last), so both see the machine in the same
state; the first table gives each endpoint's median of per-block medians as a multiple of the
floor's, and the multiple weighted by the load test's mix (bench/load/scenario.py MIX).

The database is created and migrated when missing; the bench users (`api-cpu-*`) are deleted at the end.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import io
import json
import os
import platform
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

EMAIL_PREFIX = "api-cpu-"
PASSWORD = "bench-Passw0rd-ok!"
PROXY = "127.0.0.1"


def configure(database_url: str, redis_url: str) -> None:
    """The load test's settings (bench/stack.py), before Django reads them."""
    os.environ.update(
        DJANGO_SETTINGS_MODULE="coinlink.settings",
        COINLINK_ENV="production",
        SECRET_KEY=secrets.token_urlsafe(64),
        JWT_SIGNING_KEY=secrets.token_urlsafe(48),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        PUBLIC_ORIGINS="https://coinlink.bench",
        FRONTEND_URL="https://coinlink.bench",
        CORS_ALLOWED_ORIGINS="https://coinlink.bench",
        SECURE_PROXY_SSL_HEADER="true",
        TRUSTED_PROXIES=f"{PROXY}/32",
        RATELIMIT_ENABLED="false",
        BCRYPT_ROUNDS="4",
        LOG_LEVEL="info",
        LOG_FORMAT="json",
        PROMETHEUS_MULTIPROC_DIR=tempfile.mkdtemp(prefix="coinlink-api-cpu-prom-"),
    )
    atexit.register(shutil.rmtree, os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


@contextlib.contextmanager
def stderr_to_devnull():
    """The access log is written (its cost counts) but not shown."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class Client:
    """Calls the WSGI application directly and books CPU time and queries per action name."""

    def __init__(self):
        from django.core.wsgi import get_wsgi_application
        from django.db import connection

        self.app = get_wsgi_application()
        self.connection = connection
        self.cpu: dict[str, list[float]] = defaultdict(list)
        self.blocks: dict[str, list[list[float]]] = defaultdict(lambda: [[]])  # per `block` (below)
        self.block = 0
        self.queries: dict[str, list[int]] = defaultdict(list)
        self.recording = False
        self._count = 0

    def _counter(self, execute, sql, params, many, context):
        self._count += 1
        return execute(sql, params, many, context)

    def call(self, name: str, method: str, path: str, *, token: str | None = None, body=None, expect: int = 200):
        self._count = 0
        with self.connection.execute_wrapper(self._counter):
            code, out, spent = wsgi_call(self.app, method, path, token=token, body=body)
        if code != expect:
            raise SystemExit(f"{method} {path} -> {code}: {out[:300]!r}")
        if self.recording:
            self.cpu[name].append(spent)
            blocks = self.blocks[name]
            if len(blocks) <= self.block:
                blocks.append([])
            blocks[-1].append(spent)
            self.queries[name].append(self._count)
        return json.loads(out) if out else None


def wsgi_call(app, method: str, path: str, *, token: str | None = None, body=None) -> tuple[int, bytes, float]:
    """(status, body, CPU seconds) of one request through `app` as gunicorn's sync worker calls it."""
    path, _, query = path.partition("?")
    raw = json.dumps(body).encode() if body is not None else b""
    environ = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query, "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000", "HTTP_HOST": "127.0.0.1", "REMOTE_ADDR": PROXY,
        "HTTP_X_FORWARDED_PROTO": "https", "HTTP_X_FORWARDED_FOR": "203.0.113.7",
        "HTTP_USER_AGENT": "api-cpu-bench/1", "wsgi.input": io.BytesIO(raw), "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr, "SERVER_PROTOCOL": "HTTP/1.1",
    }  # fmt: skip
    if raw:
        environ["CONTENT_TYPE"] = "application/json"
        environ["CONTENT_LENGTH"] = str(len(raw))
    if token:
        environ["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    status = []

    def start_response(line, headers, exc_info=None):
        status.append(line)

    started = time.process_time()
    out = b"".join(app(environ, start_response))
    spent = time.process_time() - started
    return int(status[0].split()[0]), out, spent


def seed_user(index: int):
    from accounts.models import User
    from notifications.delivery import Draft, notifications_create

    user = User.objects.create_user(email=f"{EMAIL_PREFIX}{index}@example.com", password=PASSWORD)
    drafts = [
        Draft(
            user_id=user.pk,
            type="price_alert",
            title=f"BTC is at or above {n}",
            message="BTC is at 1.",
            priority="high",
        )
        for n in range(60)
    ]
    notifications_create(drafts=drafts)
    return user


class Floor:
    """The floor project (bench/floor/) in its own process, measured between blocks of CoinLink's rounds
    so that both see the same machine; its per-block medians are kept."""

    def __init__(self, database_url: str, redis_url: str):
        env = dict(os.environ, DATABASE_URL=database_url, REDIS_URL=redis_url, FLOOR_JWT_KEY=secrets.token_urlsafe(48))
        env.pop("DJANGO_SETTINGS_MODULE", None)
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "floor" / "worker.py")],
            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.blocks: list[list[float]] = []

    def measure(self, calls: int, *, record: bool = True) -> None:
        self.proc.stdin.write(f"{calls}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit("the floor worker (bench/floor/worker.py) stopped")
        if record:
            self.blocks.append(json.loads(line))

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def rest_rounds(client: Client, rounds: int, warmup: int, *, floor: Floor, blocks: int) -> None:
    """`rounds` measured rounds in `blocks` blocks; before each block, and after the last, the floor
    view runs as many calls as a block has signed-in calls of the mix."""
    email = f"{EMAIL_PREFIX}0@example.com"
    login = {"email": email, "password": PASSWORD}
    tokens = client.call("auth.login", "POST", "/api/v2/auth/login", body=login)["tokens"]
    access, refresh = tokens["access_token"], tokens["refresh_token"]
    for n in range(10):
        body = {"symbol": "ETH", "condition": "above", "target_value": 100000 + n, "cooldown_seconds": 300}
        client.call("alerts.create", "POST", "/api/v2/alerts", token=access, body=body, expect=201)
    unread = [n["id"] for n in client.call("x", "GET", "/api/v2/notifications?page_size=100", token=access)["results"]]
    rng = random.Random(8)
    per_block = max(1, rounds // blocks)
    floor_calls = per_block * 9
    floor.measure(floor_calls, record=False)  # its warm-up
    for round_no in range(warmup + rounds):
        client.recording = round_no >= warmup
        measured = round_no - warmup
        if measured >= 0 and measured % per_block == 0:
            client.block = measured // per_block
            floor.measure(floor_calls)
        call = client.call
        call("notifications.list", "GET", "/api/v2/notifications?page_size=20", token=access)
        call("notifications.unread_count", "GET", "/api/v2/notifications/unread-count", token=access)
        call("notifications.read", "POST", f"/api/v2/notifications/{unread[round_no % len(unread)]}/read", token=access)
        call("alerts.list", "GET", "/api/v2/alerts?page_size=20", token=access)
        body = {
            "symbol": rng.choice(["BTC", "ETH", "SOL", "XRP"]),
            "condition": rng.choice(["above", "below", "crosses_above", "crosses_below"]),
            "target_value": round(rng.uniform(0.01, 100_000), 2),
            "repeat": rng.random() < 0.3,
            "cooldown_seconds": 300,
        }
        alert = call("alerts.create", "POST", "/api/v2/alerts", token=access, body=body, expect=201)
        call("alerts.delete", "DELETE", f"/api/v2/alerts/{alert['id']}", token=access, expect=204)
        call("user.profile", "GET", "/api/v2/user/profile", token=access)
        call("user.preferences", "GET", "/api/v2/user/preferences", token=access)
        call("auth.verify", "GET", "/api/v2/auth/verify", token=access)
        tokens = call("auth.refresh", "POST", "/api/v2/auth/refresh", body={"refresh_token": refresh})["tokens"]
        access, refresh = tokens["access_token"], tokens["refresh_token"]
        call("auth.logout", "POST", "/api/v2/auth/logout", token=access, body={"refresh_token": refresh}, expect=204)
        tokens = call("auth.login", "POST", "/api/v2/auth/login", body=login)["tokens"]
        access, refresh = tokens["access_token"], tokens["refresh_token"]
    client.recording = False
    floor.measure(floor_calls)


def evaluation_cycles(cycles: int, users: list, fire: int) -> tuple[list[float], list[float], list[int]]:
    """CPU of whole `alerts_evaluate` cycles and of their `alerts_claim`, and queries per cycle."""
    from django.db import connection

    from markets.models import Asset
    from notifications import evaluation
    from notifications.models import Alert

    rng = random.Random(42)
    symbols = list(Asset.objects.order_by("rank").values_list("symbol", flat=True)[:50])
    prices = {s: Decimal(str(round(10 ** rng.uniform(-1, 4.8), 4))) for s in symbols}
    alerts = []
    for i in range(2000):
        # Targets far from the price do not fire; the first `fire` ones are placed to fire every cycle.
        symbol = symbols[i % 12]
        condition = rng.choice(["above", "below", "crosses_above", "crosses_below"])
        high = condition in ("above", "crosses_above")
        factor = (Decimal("0.5") if high else Decimal("2")) if i < fire else (Decimal("3") if high else Decimal("0.3"))
        if i < fire:
            condition = "above" if high else "below"
        alerts.append(
            Alert(
                user=users[i % len(users)],
                symbol=symbol,
                condition=condition,
                target_value=(prices[symbol] * factor).quantize(Decimal("0.0001")),
                repeat=i % 3 == 0,
                cooldown_seconds=300 if i % 2 else 600,
            )
        )
    Alert.objects.bulk_create(alerts)
    payload = [{"symbol": s, "price": str(p), "change_percent_24h": "1.5"} for s, p in prices.items()]
    previous = {s: str(p * Decimal("0.999")) for s, p in prices.items()}

    claim_cpu: list[float] = []
    real_claim = evaluation.alerts_claim

    def timed_claim(**kwargs):
        started = time.process_time()
        try:
            return real_claim(**kwargs)
        finally:
            claim_cpu.append(time.process_time() - started)

    evaluation.alerts_claim = timed_claim
    cycle_cpu, cycle_queries = [], []
    count = [0]

    def counter(execute, sql, params, many, context):
        count[0] += 1
        return execute(sql, params, many, context)

    try:
        for _ in range(cycles + 3):
            Alert.objects.filter(user__in=users).update(is_active=True, rearm_at=None)
            count[0] = 0
            with connection.execute_wrapper(counter):
                started = time.process_time()
                fired = evaluation.alerts_evaluate(quote="usd", prices=payload, previous_prices=previous)
                cycle_cpu.append(time.process_time() - started)
            cycle_queries.append(count[0])
            if fired != fire:
                raise SystemExit(f"expected {fire} alerts to fire, {fired} did")
    finally:
        evaluation.alerts_claim = real_claim
    return cycle_cpu[3:], claim_cpu[3:], cycle_queries[3:]


def cleanup() -> None:
    from accounts.models import User

    User.objects.filter(email__startswith=EMAIL_PREFIX).delete()


def median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"), help="default: $DATABASE_URL")
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL"), help="default: $REDIS_URL")
    parser.add_argument("--rounds", type=int, default=300, help="measured rounds of the REST actions")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--blocks", type=int, default=15, help="blocks the rounds are measured in, the floor between")
    parser.add_argument("--cycles", type=int, default=30, help="measured alert evaluation cycles")
    parser.add_argument("--fire", type=int, default=50, help="alerts that fire per cycle")
    parser.add_argument("--json", help="also write the ratios to this file (bench/load/verdict.py reads it)")
    args = parser.parse_args()
    if not (args.database_url or "").startswith("postgres") or not args.redis_url:
        raise SystemExit("set DATABASE_URL (PostgreSQL) and REDIS_URL, or pass --database-url / --redis-url")
    name = args.database_url.rsplit("/", 1)[1]
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", name], capture_output=True, check=False)
    configure(args.database_url, args.redis_url)

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    cleanup()
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    try:
        users = [seed_user(i) for i in range(100)]
        client = Client()
        floor = Floor(args.database_url, args.redis_url)
        with stderr_to_devnull():
            rest_rounds(client, args.rounds, args.warmup, floor=floor, blocks=args.blocks)
            floor.close()
            cycle_cpu, claim_cpu, cycle_queries = (
                evaluation_cycles(args.cycles, users, args.fire) if args.cycles else ([], [], [])
            )
    finally:
        cleanup()
    load_after = Path("/proc/loadavg").read_text().split()[:3]

    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu_model = next((ln.split(":", 1)[1].strip() for ln in cpuinfo if "model name" in ln), "?")
    print(
        f"bench/api_cpu.py, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {os.cpu_count()} cores "
        f"({cpu_model}), Python {platform.python_version()}, {args.rounds} rounds after {args.warmup} warm-up, "
        f"{args.cycles} evaluation cycles; load average before {', '.join(load_before)}, "
        f"after {', '.join(load_after)}\n"
    )
    ratios = print_ratios(client, floor)
    if args.json:
        Path(args.json).write_text(json.dumps({"load_before": load_before, "load_after": load_after, **ratios}))
    print("| endpoint | CPU µs/request (median) | CPU µs/request (mean) | queries/request |")
    print("|---|---:|---:|---:|")
    for name in client.cpu:
        cpu, queries = client.cpu[name], client.queries[name]
        q = sorted(set(queries))
        shown = str(q[0]) if len(q) == 1 else f"{sum(queries) / len(queries):.1f} ({q[0]}-{q[-1]})"
        print(f"| {name} | {median(cpu) * 1e6:,.0f} | {sum(cpu) / len(cpu) * 1e6:,.0f} | {shown} |")
    if cycle_cpu:
        print(
            f"| alerts_evaluate cycle ({args.fire} of 2,000 alerts fire) | {median(cycle_cpu) * 1e6:,.0f} | "
            f"{sum(cycle_cpu) / len(cycle_cpu) * 1e6:,.0f} | {median(cycle_queries)} |"
        )
        claim_mean = sum(claim_cpu) / len(claim_cpu) * 1e6
        print(f"| of which `alerts_claim` | {median(claim_cpu) * 1e6:,.0f} | {claim_mean:,.0f} | |")


def block_median(blocks: list[list[float]]) -> float:
    """The median over blocks of each block's median: a block slowed by other work on the machine
    moves it less than it moves a pooled median."""
    return median([median(block) for block in blocks if block])


def print_ratios(client: Client, floor: Floor) -> dict:
    """Each endpoint's CPU per call as a multiple of the floor's, and the mix-weighted multiple."""
    from bench.load.scenario import MIX

    floor_cpu = block_median(floor.blocks)
    weights = {name: weight for weight, name in MIX if name in client.blocks}
    print(f"| endpoint (mix weight) | CPU µs/call (median of {len(floor.blocks)} blocks) | × floor |")
    print("|---|---:|---:|")
    print(f"| floor: bench/floor DRF view (HS256 JWT, Redis GET, indexed query) | {floor_cpu * 1e6:,.0f} | 1.00 |")
    for name, blocks in client.blocks.items():
        cpu = block_median(blocks)
        weight = f" ({weights[name]})" if name in weights else ""
        print(f"| {name}{weight} | {cpu * 1e6:,.0f} | {cpu / floor_cpu:.2f} |")
    weighted = sum(block_median(client.blocks[n]) * w for n, w in weights.items()) / sum(weights.values())
    print(f"| **signed-in mix, weighted** | {weighted * 1e6:,.0f} | **{weighted / floor_cpu:.2f}** |\n")
    return {
        "floor_us": round(floor_cpu * 1e6),
        "endpoints": {
            name: {"us": round(block_median(blocks) * 1e6), "weight": weights.get(name)}
            for name, blocks in client.blocks.items()
        },
        "weighted_us": round(weighted * 1e6),
        "weighted_multiple": round(weighted / floor_cpu, 2),
    }


if __name__ == "__main__":
    main()
