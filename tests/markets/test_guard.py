"""The per-IP guard in front of the public market endpoints: 429 past the limit in the error
shape, fails open when the rate-limit store is down."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

pytestmark = [pytest.mark.django_db, pytest.mark.redis]


@pytest.fixture
def tight(settings):
    settings.RATELIMIT_ENABLE = True
    settings.RATELIMIT_MARKET = "3/m"
    return settings


def test_it_refuses_past_the_market_rate_with_retry_after(client, tight, usd_only):
    for _ in range(3):
        assert client.get("/api/v2/market/ticker").status_code == 200
    response = client.get("/api/v2/market/ticker", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    assert response.json()["code"] == "rate_limited" and response.json()["trace_id"]
    assert client.get("/api/v2/market/ticker", REMOTE_ADDR="198.51.100.7").status_code == 200  # own budget


def test_it_fails_open_when_redis_is_down(client, tight, usd_only):
    closed = {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
    }
    tight.CACHES = {"default": tight.CACHES["default"], "ratelimit": closed}
    tight.RATELIMIT_USE_CACHE = "ratelimit"
    sample = {"group": "market", "outcome": "open"}
    before = REGISTRY.get_sample_value("coinlink_ratelimit_store_failures_total", sample) or 0
    for _ in range(5):
        assert client.get("/api/v2/market/ticker").status_code == 200
    assert REGISTRY.get_sample_value("coinlink_ratelimit_store_failures_total", sample) == before + 5
