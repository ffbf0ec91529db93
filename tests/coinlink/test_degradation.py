"""Graceful degradation with real services failing: a private redis-server killed mid-test, and the
database connection pointed at a closed port. The shared PostgreSQL and Redis are never touched."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connections
from django.test import Client

from coinlink import metrics
from tests.coinlink.procs import PrivateRedis, free_port

TICKER = "/api/v2/market/ticker"
LOGIN = "/api/v2/auth/login"


def _error(response, status: int, *codes: str) -> dict:
    assert response.status_code == status, (response.status_code, response.content[:300])
    body = response.json()
    assert body["detail"] and body["trace_id"] == response["X-Request-ID"]
    if codes:
        assert body["code"] in codes
    return body


def _seed_btc(price: str = "64000.50"):
    from markets.models import Asset, Ticker

    asset, _ = Asset.objects.get_or_create(
        symbol="BTC", defaults={"name": "Bitcoin", "coingecko_id": "bitcoin", "rank": 1, "is_active": True}
    )
    now = datetime.now(UTC)
    Ticker.objects.update_or_create(
        asset=asset,
        quote="usd",
        defaults={"price": Decimal(price), "source": "coingecko", "last_updated": now, "fetched_at": now},
    )


def _failures(group: str, outcome: str) -> float:
    return metrics.RATELIMIT_FAILURES.labels(group=group, outcome=outcome)._value.get()


# --- Redis down -------------------------------------------------------------------------------


@pytest.fixture
def private_redis(settings, monkeypatch):
    """Every Redis use of the app (Django cache, the per-IP guard's direct client) on a private server."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    import redis as redis_py

    from coinlink import redis as coinlink_redis

    redis = PrivateRedis().start()
    client = redis_py.Redis.from_url(redis.url, socket_connect_timeout=0.5, socket_timeout=0.5)
    monkeypatch.setattr(coinlink_redis, "get_redis", lambda: client)
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": redis.url,
            "KEY_PREFIX": "coinlink-ops-test",
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                "SOCKET_CONNECT_TIMEOUT": 0.5,
                "SOCKET_TIMEOUT": 0.5,
            },
        }
    }
    settings.PRODUCTION = True  # /readyz treats the cache as critical in production mode
    yield redis
    redis.kill()


def _restart(redis: PrivateRedis) -> None:
    redis.start()  # same port: the running Django reconnects on its own


@pytest.mark.django_db
def test_it_keeps_serving_when_redis_dies_and_recovers_without_a_restart(private_redis, owner, password):
    _seed_btc()
    client = Client(raise_request_exception=False)
    assert client.get(TICKER).status_code == 200
    assert client.get("/readyz").status_code == 200

    private_redis.kill()
    opened_before = _failures("market", "open")

    # Market reads keep answering with the last values from PostgreSQL; the read limit fails open.
    response = client.get(TICKER, {"symbols": "BTC"})
    assert response.status_code == 200
    assert [t["price"] for t in response.json()["data"]] == [64000.5]
    assert client.get("/api/v2/market/BTC/price").status_code == 200
    assert _failures("market", "open") > opened_before

    # The auth limits fail closed: no login attempts the limiter cannot count.
    login = client.post(LOGIN, {"email": owner.email, "password": password}, content_type="application/json")
    _error(login, 503)
    assert login["Retry-After"]

    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["cache"]["status"] == "fail"
    assert client.get("/health").status_code == 200

    _restart(private_redis)
    assert client.get("/readyz").status_code == 200
    assert client.get(TICKER).status_code == 200
    login = client.post(LOGIN, {"email": owner.email, "password": password}, content_type="application/json")
    assert login.status_code == 200


@pytest.mark.django_db
def test_nothing_answers_500_while_redis_is_down(private_redis, owner, owner_client):
    _seed_btc()
    private_redis.kill()
    anon = Client(raise_request_exception=False)
    owner_client.raise_request_exception = False
    paths = ["/health", "/readyz", "/metrics", TICKER, "/api/v2/market/assets", "/api/bitcoin/price", "/api/schema"]
    for path in paths:
        assert anon.get(path).status_code < 500 or path == "/readyz", path
    for path in ("/api/v2/user/profile", "/api/v2/notifications", "/api/v2/alerts", "/api/v2/auth/verify"):
        status = owner_client.get(path).status_code
        assert status < 500 or status == 503, (path, status)


# --- PostgreSQL down --------------------------------------------------------------------------


@pytest.fixture
def database_down():
    """Points the default connection at a closed port, then back; the Django process never restarts."""
    connection = connections["default"]
    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict["HOST"] = "127.0.0.1"
    connection.settings_dict["PORT"] = str(free_port())
    connection.settings_dict.setdefault("OPTIONS", {})["connect_timeout"] = 1

    def restore():
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)

    yield restore
    restore()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_database_going_away_gives_503s_not_500s(owner, owner_client, settings, request):
    _seed_btc()
    settings.ROOT_URLCONF = "tests.coinlink.ops_urls"
    client = Client(raise_request_exception=False)
    owner_client.raise_request_exception = False
    assert owner_client.get("/api/v2/user/profile").status_code == 200

    restore = request.getfixturevalue("database_down")

    assert client.get("/health").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["checks"]["database"]["status"] == "fail"
    _error(owner_client.get("/api/v2/user/profile"), 503, "database_unavailable")  # DRF view
    _error(client.get("/ops-test/db-down"), 503, "database_unavailable")  # plain Django view
    _error(client.get("/api/v2/market/assets"), 503, "database_unavailable")
    # Session-backed admin: the session and user are loaded by middleware, still a JSON 503.
    admin = Client(raise_request_exception=False)
    admin.cookies["sessionid"] = "0123456789abcdefghijklmnopqrstuv"
    _error(admin.get("/admin/"), 503, "database_unavailable")
    body = json.dumps({"email": owner.email, "password": "x" * 12})
    login = client.post(LOGIN, body, content_type="application/json")
    _error(login, 503, "database_unavailable")

    restore()
    assert client.get("/readyz").status_code == 200
    assert owner_client.get("/api/v2/user/profile").status_code == 200
