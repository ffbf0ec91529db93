"""Every `coinlink_*` Prometheus metric, defined once.

With PROMETHEUS_MULTIPROC_DIR set (several gunicorn/uvicorn/celery processes), prometheus_client
writes each process's values to files and `/metrics` adds them up; gauges say how.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Buckets at the SLA edges: 50 ms, 150 ms (REST p95), 250 ms (WebSocket p95), 400 ms (REST p99).
SLA_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.4, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_DURATION = Histogram(
    "coinlink_http_request_duration_seconds",
    "HTTP request duration by view, method and status.",
    ["view", "method", "status"],
    buckets=SLA_BUCKETS,
)
RATELIMIT_HITS = Counter("coinlink_ratelimit_hits_total", "Requests refused by a rate limit.", ["group"])
RATELIMIT_FAILURES = Counter(
    "coinlink_ratelimit_store_failures_total",
    "Rate-limit checks that could not reach the cache, by whether they failed open or closed.",
    ["group", "outcome"],
)
AUTH_ATTEMPTS = Counter("coinlink_auth_attempts_total", "Auth attempts by action and outcome.", ["action", "outcome"])

WS_OPEN = Gauge("coinlink_websockets_open", "Open WebSocket connections.", multiprocess_mode="livesum")
WS_AUTHENTICATED = Gauge(
    "coinlink_websockets_authenticated", "Authenticated WebSocket connections.", multiprocess_mode="livesum"
)
WS_FRAMES_SENT = Counter("coinlink_ws_frames_sent_total", "WebSocket frames written, by type.", ["type"])
WS_FRAMES_DROPPED = Counter(
    "coinlink_ws_frames_dropped_total", "WebSocket frames dropped or coalesced for slow clients.", ["type"]
)
WS_CLOSED = Counter("coinlink_ws_closed_total", "WebSocket connections closed by the server, by reason.", ["reason"])
FEED_LATENCY = Histogram(
    "coinlink_feed_delivery_seconds",
    "From a price reaching the ingest to its frame being written to a socket.",
    buckets=SLA_BUCKETS,
)

UPSTREAM_DURATION = Histogram(
    "coinlink_upstream_request_duration_seconds",
    "Upstream (CoinGecko, Coinbase) call duration.",
    ["provider", "endpoint"],
    buckets=SLA_BUCKETS,
)
UPSTREAM_ERRORS = Counter(
    "coinlink_upstream_errors_total", "Upstream failures by provider and reason.", ["provider", "reason"]
)
UPSTREAM_REJECTED = Counter(
    "coinlink_upstream_payloads_rejected_total", "Upstream payloads or rows rejected by validation.", ["provider"]
)
BREAKER_OPEN = Gauge(
    "coinlink_upstream_breaker_open",
    "1 while a provider's circuit breaker is open.",
    ["provider"],
    multiprocess_mode="max",
)
MARKET_DATA_AGE = Gauge(
    "coinlink_market_data_age_seconds",
    "Age of the newest stored price at the last ingest or /metrics scrape.",
    # The newest write wins: each scrape recomputes it, so an idle worker's old value cannot hide staleness.
    multiprocess_mode="mostrecent",
)
INGEST_RUNS = Counter("coinlink_ingest_runs_total", "Market ingest runs by outcome.", ["outcome"])

TASK_DURATION = Histogram(
    "coinlink_task_duration_seconds", "Celery task duration.", ["task"], buckets=(*SLA_BUCKETS, 30.0, 60.0)
)
TASK_FAILURES = Counter("coinlink_task_failures_total", "Celery task failures.", ["task"])

ALERTS_FIRED = Counter("coinlink_alerts_fired_total", "Price alerts fired.", ["condition"])
NOTIFICATIONS_SENT = Counter(
    "coinlink_notifications_total", "Notifications created and delivered, by type and channel.", ["type", "channel"]
)
DEPENDENCY_ERRORS = Counter(
    "coinlink_dependency_errors_total",
    "Requests answered 503 because a dependency (database, redis) was unreachable.",
    ["dependency"],
)

STREAM_CONNECTED = Gauge(
    "coinlink_market_stream_connected",
    "1 while this streamer is subscribed to the Coinbase feed.",
    multiprocess_mode="livemax",
)
STREAM_LEADER = Gauge(
    "coinlink_market_stream_leader", "1 while this streamer holds the lease and publishes.", multiprocess_mode="livemax"
)
STREAM_MESSAGES = Counter(
    "coinlink_market_stream_messages_total", "Coinbase feed messages received, by type.", ["type"]
)
STREAM_DROPPED = Counter(
    "coinlink_market_stream_dropped_total", "Coinbase feed messages dropped, by reason.", ["reason"]
)
STREAM_SEQUENCE_GAPS = Counter(
    "coinlink_market_stream_sequence_gaps_total", "Heartbeats whose sequence did not follow the previous one."
)
STREAM_RECONNECTS = Counter("coinlink_market_stream_reconnects_total", "Coinbase feed (re)connection attempts.")
STREAM_FLUSHES = Counter("coinlink_market_stream_flushes_total", "Coalesced flushes published, per quote.", ["quote"])
STREAM_LAG = Histogram(
    "coinlink_market_stream_lag_seconds",
    "From a trade's time on Coinbase to its price being published.",
    buckets=(0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0),
)


def metrics_http_serve(port: int, addr: str) -> None:
    """Serve this process's metrics (all processes' with PROMETHEUS_MULTIPROC_DIR) on its own port."""
    import os

    from prometheus_client import REGISTRY, CollectorRegistry, multiprocess, start_http_server

    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    start_http_server(port, addr=addr, registry=registry)
