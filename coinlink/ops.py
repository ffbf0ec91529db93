"""Health, readiness and metrics endpoints for probes and Prometheus."""

from __future__ import annotations

import hmac
import ipaddress
import logging
import time
import uuid
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django_prometheus.exports import ExportToDjangoView

from coinlink.errors import json_error
from coinlink.net import client_ip

logger = logging.getLogger("coinlink.ops")

Check = Callable[[], dict]


@never_cache
def health(request):
    """Liveness: the process answers. Touches no dependency."""
    return JsonResponse({"status": "ok"})


def _timed(name: str, check: Check) -> dict:
    started = time.perf_counter()
    try:
        result = {"status": "ok", **check()}
    except Exception as exc:  # any failure of a dependency is a failed check, never a 500
        # The answer is public (probes come through the proxy): the type only. A driver's message
        # can name hosts, addresses and user names; it goes to the log, with this request's id.
        logger.warning("readiness check %s failed: %s: %s", name, exc.__class__.__name__, str(exc)[:500])
        result = {"status": "fail", "error": exc.__class__.__name__}
    result["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return result


def _database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"backend": connection.vendor}


def _cache() -> dict:
    key = f"readyz:{uuid.uuid4().hex}"
    cache.set(key, "1", 5)
    if cache.get(key) != "1":
        raise RuntimeError("cache did not return what was written")
    cache.delete(key)
    return {"backend": "redis" if settings.CONFIG.redis_url else "locmem"}


def _channel_layer() -> dict:
    # The contract's name for it; what is checked is the feed's pub/sub bus (docs/realtime.md).
    from realtime.hub import bus_status

    return bus_status()


def _broker() -> dict:
    if settings.EMBEDDED:
        return {"backend": "in-process"}
    from coinlink.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=1)
    return {"backend": "redis"}


def _market_data() -> dict:
    from markets.selectors import market_data_status

    return market_data_status()


def _market_stream() -> dict:
    """Live ticks (connected, products, age of the last feed message); never critical: the poll serves meanwhile."""
    from markets.stream.status import stream_status_get

    return stream_status_get()


# Failing these makes the instance unready (503); the rest only degrade it.
CRITICAL = {"database"}
CRITICAL_IN_PRODUCTION = {"cache", "channel_layer", "broker"}
CHECKS: dict[str, Check] = {
    "database": _database,
    "cache": _cache,
    "channel_layer": _channel_layer,
    "broker": _broker,
    "market_data": _market_data,
    "market_stream": _market_stream,
}


@never_cache
def readyz(request):
    checks = {name: _timed(name, check) for name, check in CHECKS.items()}
    critical = CRITICAL | (CRITICAL_IN_PRODUCTION if settings.PRODUCTION else set())
    failed = {name for name, result in checks.items() if result["status"] != "ok"}
    if failed & critical:
        status, code = "fail", 503
    elif failed:
        status, code = "degraded", 200
    else:
        status, code = "ok", 200
    return JsonResponse({"status": status, "checks": checks}, status=code)


# Who may scrape when neither METRICS_TOKEN nor METRICS_ALLOWED_NETWORKS is set, in production: this
# host only (a Prometheus beside it), because a proxy in front is the only other guard and may be absent.
_LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


def _metrics_allowed(request) -> bool:
    token = settings.METRICS_TOKEN
    networks = settings.METRICS_ALLOWED_NETWORKS
    if not token and not networks:
        if not settings.PRODUCTION:
            return True
        networks = _LOOPBACK
    if token:
        presented = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if presented and hmac.compare_digest(presented, token):
            return True
    if networks:
        try:
            ip = ipaddress.ip_address(client_ip(request))
        except ValueError:
            return False
        return any(ip in network for network in networks)
    return False


@never_cache
def metrics(request):
    """Prometheus text format; limited to METRICS_ALLOWED_NETWORKS or METRICS_TOKEN when set (else, in
    production, to this host)."""
    if not _metrics_allowed(request):
        return json_error(403, "Metrics are not available to this client.", "permission_denied")
    _market_data_age_refresh()
    return ExportToDjangoView(request)


def _market_data_age_refresh() -> None:
    """Recompute the market data age at scrape time: set only by the ingest, it would freeze when the ingest stops."""
    from coinlink import metrics as coinlink_metrics

    try:
        age = _market_data().get("age_seconds")
    except Exception:  # a scrape must not fail because a dependency is down; /readyz reports that
        return
    if age is not None:
        coinlink_metrics.MARKET_DATA_AGE.set(age)
