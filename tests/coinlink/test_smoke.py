"""scripts/smoke (coinlink/smoke.py) against the production topology on loopback: nginx with the shipped
config in front of gunicorn (HTTP) and uvicorn (/ws), in production mode, on a private redis-server
this module starts and stops. Prices are seeded the way an ingest publishes them."""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import re
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

import pytest

from coinlink import smoke
from deploy.nginx import loopback as nginx
from tests.coinlink.procs import (
    ROOT,
    PrivateRedis,
    free_port,
    http_get,
    production_env,
    start_gunicorn,
    start_uvicorn,
    stop,
    wait_until,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed"),
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed"),
]


PUBLISHED = itertools.count(1)


@dataclass
class Stack:
    base: str
    redis: PrivateRedis


@pytest.fixture(scope="module")
def stack(tmp_path_factory, django_db_setup):
    from tests.realtime.servers import database_url_of_tests

    redis = PrivateRedis().start()
    web_port, ws_port, proxy_port = free_port(), free_port(), free_port()
    base = f"http://127.0.0.1:{proxy_port}"
    env = production_env(DATABASE_URL=database_url_of_tests(), REDIS_URL=redis.url, WS_ALLOWED_ORIGINS=base)
    web = start_gunicorn({**env, "HOST": "127.0.0.1", "PORT": str(web_port), "WEB_CONCURRENCY": "1"})
    ws = start_uvicorn({**env, "PORT": str(ws_port)})
    proxy = nginx.start(tmp_path_factory.mktemp("smoke"), web_port=web_port, ws_port=ws_port, proxy_port=proxy_port)
    try:
        for port in (web_port, ws_port):
            wait_until(lambda port=port: http_get(f"http://127.0.0.1:{port}/health")[0] == 200, timeout=60)
        wait_until(lambda: http_get(f"{base}/proxy-health")[0] == 200, timeout=10)
        yield Stack(base, redis)
    finally:
        for process in (proxy, ws, web):
            stop(process)
        redis.kill()


def publish_prices(stack: Stack, settings, *, fetched_ago: float = 0, updated_ago: float = 0) -> None:
    """Ticker rows and the shared snapshot, as an ingest leaves them, in the servers' Redis."""
    from django.utils import timezone

    from markets import snapshot
    from markets.models import Asset, Ticker

    settings.CACHES = {
        "default": {
            **settings.CACHES["default"],
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": stack.redis.url,
            "KEY_PREFIX": "coinlink",
        }
    }
    now = timezone.now()
    btc_price = 60000 + next(PUBLISHED)  # tells this publication from the one before
    for rank, (symbol, name) in enumerate((("BTC", "Bitcoin"), ("ETH", "Ethereum")), start=1):
        asset, _ = Asset.objects.get_or_create(
            symbol=symbol, defaults={"name": name, "coingecko_id": name.lower(), "rank": rank, "is_active": True}
        )
        Ticker.objects.update_or_create(
            asset=asset,
            quote="usd",
            defaults={
                "price": btc_price / rank,
                "source": "coingecko",
                "last_updated": now - timedelta(seconds=updated_ago),
                "fetched_at": now - timedelta(seconds=fetched_ago),
            },
        )
    snapshot.snapshot_build(quote="usd")
    snapshot.last_success_mark(at=(now - timedelta(seconds=fetched_ago)).timestamp())
    # The web process rereads the shared snapshot once a second and the proxy caches for one more.
    expect_stale = fetched_ago > settings.MARKET_STALE_SECONDS

    def served() -> bool:
        status, body = http_get(f"{stack.base}/api/v2/market/ticker?limit=20")
        served = json.loads(body) if status == 200 else {}
        return served.get("stale") is expect_stale and served["data"][0]["price"] == btc_price

    wait_until(served, timeout=15)


def run_smoke(stack: Stack, *args: str, **env: str) -> tuple[int, str]:
    """scripts/smoke's exit status and output, run in this process (its checks count towards coverage)."""
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        status = smoke.main([stack.base, *args], environ=env)
    return status, output.getvalue()


def failures(output: str) -> dict[str, str]:
    """{check: why} from the FAIL lines, without their timings."""
    lines = [re.sub(r" \(\d+ ms\)$", "", line) for line in output.splitlines() if line.startswith("FAIL ")]
    return dict(line.removeprefix("FAIL ").split(": ", 1) for line in lines)


@pytest.mark.django_db(transaction=True)
def test_it_passes_against_a_healthy_release(stack, settings):
    publish_prices(stack, settings)
    # As an operator runs it: the script, with the project's venv.
    completed = subprocess.run(
        [str(ROOT / "scripts/smoke"), stack.base], capture_output=True, text=True, timeout=120, check=False
    )
    status, output = completed.returncode, completed.stdout
    assert status == 0, output
    assert failures(output) == {}
    assert [line.split(":")[0] for line in output.splitlines()[:-1]] == [
        "ok   health",
        "ok   readyz",
        "ok   tickers",
        "ok   schema",
        "ok   websocket",
    ]
    assert "crypto_ticker_update with 2 tickers" in output
    assert output.splitlines()[-1] == f"smoke {stack.base}: every check passed"


@pytest.mark.django_db(transaction=True)
def test_its_json_report_is_one_document_a_pipeline_can_read(stack, settings):
    publish_prices(stack, settings)
    status, output = run_smoke(stack, "--json")
    report = json.loads(output)
    assert status == 0 and report["ok"] is True
    assert report["base_url"] == stack.base and report["origin"] == stack.base
    assert {check["name"]: check["ok"] for check in report["checks"]} == {
        "health": True,
        "readyz": True,
        "tickers": True,
        "schema": True,
        "websocket": True,
    }
    assert all(isinstance(check["duration_ms"], float) for check in report["checks"])


@pytest.mark.django_db(transaction=True)
def test_it_fails_on_stale_prices(stack, settings):
    publish_prices(stack, settings, fetched_ago=3600, updated_ago=3600)
    status, output = run_smoke(stack, "--json")
    report = json.loads(output)
    assert status == 1 and report["ok"] is False
    failed = {check["name"]: check["detail"] for check in report["checks"] if not check["ok"]}
    assert list(failed) == ["tickers"]
    assert failed["tickers"] == "stale prices for BTC, ETH: the ingest is failing"


@pytest.mark.django_db(transaction=True)
def test_it_fails_when_the_newest_price_is_older_than_the_limit(stack, settings):
    # Fetched just now, but the upstream dates every price two hours back: not flagged stale by the app.
    publish_prices(stack, settings, updated_ago=7200)
    status, output = run_smoke(stack, "--max-age", "600")
    assert status == 1
    assert list(failures(output)) == ["tickers"]
    assert failures(output)["tickers"].startswith("newest price is 720")
    assert "s old, over the 600 s limit" in failures(output)["tickers"]


@pytest.mark.django_db(transaction=True)
def test_it_fails_when_ws_refuses_the_origin(stack, settings):
    publish_prices(stack, settings)
    status, output = run_smoke(stack, "--origin", "https://evil.example.net")
    assert status == 1
    assert failures(output) == {
        "websocket": "handshake refused with HTTP 403 (is https://evil.example.net in WS_ALLOWED_ORIGINS?)"
    }


@pytest.mark.django_db(transaction=True)
def test_it_fails_on_readyz_when_redis_is_stopped(stack, settings):
    publish_prices(stack, settings)
    stack.redis.kill()
    try:
        status, output = run_smoke(stack, "--timeout", "30")
    finally:
        stack.redis.start()  # same port: the servers reconnect on their own
    assert status == 1
    readyz = failures(output)["readyz"]
    assert readyz.startswith("HTTP 503, not ready: ")
    assert "cache (" in readyz and "channel_layer (" in readyz and "broker (" in readyz
    assert "database" not in readyz and "health" not in failures(output)


@pytest.mark.django_db(transaction=True)
def test_it_signs_a_dedicated_account_in_and_out_when_given_one(stack, settings, owner, password):
    from accounts.models import Session

    publish_prices(stack, settings)
    status, output = run_smoke(stack, SMOKE_EMAIL=owner.email, SMOKE_PASSWORD=password)
    assert status == 0, output
    assert "ok   auth: login, refresh and logout" in output
    # The one session it opened is closed again: nothing is left signed in.
    assert Session.objects.filter(user=owner, revoked_at=None).count() == 0

    status, output = run_smoke(stack, SMOKE_EMAIL=owner.email, SMOKE_PASSWORD="not the password")
    assert status == 1
    assert failures(output)["auth"].startswith("HTTP 401 ")


# --- without the stack ------------------------------------------------------------------------


@pytest.fixture
def silent_server():
    """Accepts connections and never answers: a hung release, or a firewall that drops."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held: list[socket.socket] = []
    stopping = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stopping.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stopping.set()
    thread.join(2)
    for connection in held:
        connection.close()
    listener.close()


def test_it_ends_within_its_time_limit_against_a_server_that_never_answers(silent_server, capsys):
    started = time.monotonic()
    status = smoke.main([silent_server, "--timeout", "3"])
    elapsed = time.monotonic() - started
    output = capsys.readouterr().out
    assert status == 1
    assert elapsed < 8, elapsed
    # The request's own timeout and the run's budget are both 3 s here: either may fire first.
    assert failures(output)["health"] in ("timed out (ReadTimeout)", "cut off when the 3 s budget ran out")
    assert failures(output)["websocket"] == "not run: the 3 s budget was spent"


def test_the_ws_origin_defaults_to_smoke_origin_then_to_the_base_urls_own(monkeypatch):
    options, as_json = smoke.options_from(["https://api.example.com/"], environ={})
    assert (options.base_url, options.origin, as_json) == ("https://api.example.com", "https://api.example.com", False)
    options, _ = smoke.options_from(["https://api.example.com"], environ={"SMOKE_ORIGIN": "https://app.example.com"})
    assert options.origin == "https://app.example.com"
    options, _ = smoke.options_from(["https://api.example.com", "--origin", "https://x.example"], environ={})
    assert options.origin == "https://x.example"
    assert smoke.ws_url("https://api.example.com/v") == "wss://api.example.com/v/ws"


@pytest.mark.parametrize(
    "argv",
    [["ftp://api.example.com"], ["api.example.com"], ["https://api.example.com/?q=1"], ["https://x", "--timeout", "0"]],
)
def test_bad_usage_exits_2_before_any_request(argv):
    completed = subprocess.run([str(ROOT / "scripts/smoke"), *argv], capture_output=True, text=True, check=False)
    assert completed.returncode == 2
    assert "usage: scripts/smoke" in completed.stderr
