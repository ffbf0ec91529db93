"""The nginx config of the compose deployment, run for real in front of gunicorn (web) and uvicorn
(ws): /ws is upgraded to the ASGI server, everything else reaches the HTTP API."""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import shutil
import subprocess

import pytest

from deploy.nginx import loopback
from tests.coinlink.procs import BIN, ROOT, child_env, free_port, http_fetch, http_get, start_gunicorn, stop, wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed"),
]

ORIGIN = "http://127.0.0.1:8000"  # a development default of WS_ALLOWED_ORIGINS


@pytest.fixture(scope="module")
def stack(tmp_path_factory, django_db_setup):
    from django.db import connection

    from tests.realtime.servers import database_url_of_tests

    tmp = tmp_path_factory.mktemp("proxy")
    web_port, ws_port, proxy_port = free_port(), free_port(), free_port()
    # The app's own per-process socket cap above the proxy's, so the proxy's is what a test meets.
    env = child_env(LOG_LEVEL="warning", PROMETHEUS_MULTIPROC_DIR=None, RATELIMIT_ENABLED="false", WS_MAX_PER_IP="500")
    # As production: the app believes the proxy's X-Forwarded-For, and scrapers on this host may read /metrics.
    env.update(TRUSTED_PROXIES="127.0.0.1/32", METRICS_ALLOWED_NETWORKS="127.0.0.1/32")
    if connection.vendor == "postgresql":  # the migrated test database, not the developer's
        env["DATABASE_URL"] = database_url_of_tests()
    web = start_gunicorn({**env, "HOST": "127.0.0.1", "PORT": str(web_port), "WEB_CONCURRENCY": "2"})
    ws = subprocess.Popen(
        [
            *(str(BIN / "uvicorn"), "coinlink.asgi:application", "--host", "127.0.0.1"),
            *("--port", str(ws_port), "--ws", "websockets-sansio", "--ws-per-message-deflate", "false"),
            "--no-access-log",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    proxy = loopback.start(tmp, web_port=web_port, ws_port=ws_port, proxy_port=proxy_port)
    base = f"http://127.0.0.1:{proxy_port}"
    try:
        wait_until(lambda: http_get(f"http://127.0.0.1:{web_port}/health")[0] == 200, timeout=30)
        wait_until(lambda: http_get(f"http://127.0.0.1:{ws_port}/health")[0] == 200, timeout=30)
        wait_until(lambda: http_get(f"{base}/proxy-health")[0] == 200, timeout=10)
        yield base, tmp
    finally:
        for process in (proxy, ws, web):
            stop(process)


def test_http_goes_to_the_api_with_the_request_id_and_client_address(stack):
    base, tmp = stack
    status, body = http_get(f"{base}/api/v2/nowhere", headers={"Host": "localhost", "X-Request-ID": "via-proxy-1"})
    assert status == 404
    assert json.loads(body)["trace_id"] == "via-proxy-1"  # nginx passed the id on, the app answered
    assert http_get(f"{base}/health", headers={"Host": "localhost"})[0] == 200
    # The proxy writes its log at most a second late (buffered).
    wait_until(lambda: '"request_id":"via-proxy-1","upstream"' in (tmp / "access.log").read_text(), timeout=5)
    assert '"status":404' in (tmp / "access.log").read_text()


def test_ws_is_upgraded_and_reaches_the_asgi_server(stack):
    import websockets

    base, _ = stack
    url = base.replace("http://", "ws://") + "/ws"

    async def first_frame() -> dict:
        async with websockets.connect(url, origin=ORIGIN, open_timeout=10) as socket:
            return json.loads(await asyncio.wait_for(socket.recv(), 10))

    assert asyncio.run(first_frame())["type"] == "connected"


def test_a_foreign_origin_is_refused_through_the_proxy(stack):
    import websockets

    base, _ = stack
    url = base.replace("http://", "ws://") + "/ws"

    async def attempt():
        async with websockets.connect(url, origin="https://evil.example.net", open_timeout=10) as socket:
            await asyncio.wait_for(socket.recv(), 5)

    with pytest.raises((websockets.exceptions.InvalidStatus, websockets.exceptions.ConnectionClosed)):
        asyncio.run(attempt())


def test_the_feeds_close_codes_reach_the_client_through_the_proxy(stack):
    import websockets

    base, _ = stack
    url = base.replace("http://", "ws://") + "/ws"

    async def close_code(frames: list[str]) -> int | None:
        async with websockets.connect(url, origin=ORIGIN, open_timeout=10, max_size=None) as socket:
            await asyncio.wait_for(socket.recv(), 10)
            for frame in frames:
                await socket.send(frame)
            with pytest.raises(websockets.ConnectionClosed) as closed:
                async with asyncio.timeout(10):
                    while True:
                        await socket.recv()
            return closed.value.rcvd.code if closed.value.rcvd else None

    oversized = json.dumps({"type": "ping", "pad": "x" * 70_000})  # WS_MAX_FRAME_BYTES is 65536
    assert asyncio.run(close_code([oversized])) == 1009
    assert asyncio.run(close_code(['{"type": "pong"}'] * 40)) == 1008  # WS_MAX_FRAMES_PER_SECOND is 20


def test_metrics_pass_the_proxy_only_from_private_networks(stack):
    base, _ = stack
    # 127.0.0.1 is on the proxy's allow list; 127.0.0.2 is on none of them, so it stands in for a
    # public address and meets `deny all`, answered in the API's error shape.
    assert http_get(f"{base}/metrics", headers={"Host": "localhost"})[0] == 200
    port = int(base.rsplit(":", 1)[1])
    # The app answers /metrics/ as /metrics, so the proxy must refuse both spellings.
    for path in ("/metrics", "/metrics/"):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=("127.0.0.2", 0))
        try:
            conn.request("GET", path, headers={"Host": "localhost", "X-Request-ID": "scraper-1"})
            response = conn.getresponse()
            status, headers, body = response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            conn.close()
        assert status == 403, path
        error = _error_shape(headers, body)
        assert error["code"] == "forbidden" and error["trace_id"] == "scraper-1"
        assert b"# TYPE" not in body


@pytest.mark.parametrize(
    ("forwarded_for", "status"),
    [
        (None, 200),  # the scraper on this host, as the proxy reports it
        ("not-an-ip", 403),  # an unreadable hop is nobody, not the proxy that passed it on
        ("127.0.0.1:9100", 403),
        ("::ffff:127.0.0.1", 200),  # IPv4-mapped: the loopback address it is
        ("::ffff:203.0.113.7", 403),
    ],
)
def test_the_app_reads_the_client_address_the_proxy_forwards(stack, forwarded_for, status):
    base, _ = stack
    headers = {"Host": "localhost"} | ({"X-Forwarded-For": forwarded_for} if forwarded_for else {})

    assert http_get(f"{base}/metrics", headers=headers)[0] == status


def _get(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    return http_fetch(url, {"Host": "localhost", **headers}, timeout=10)


@pytest.mark.postgres  # the server reads the test database (market data, sessions)
def test_repeated_market_reads_come_from_the_proxy_cache_with_their_own_request_id(stack):
    base, tmp = stack
    url = f"{base}/api/v2/market/ticker?limit=3"
    _, first_headers, first_body = _get(url, **{"X-Request-ID": "fill-1"})
    status, headers, body = _get(url, **{"X-Request-ID": "hit-2"})
    assert status == 200
    assert headers["x-cache-status"] == "HIT"
    assert body == first_body and headers["etag"] == first_headers["etag"]
    assert headers["x-request-id"] == "hit-2"  # never the id of the request that filled the cache
    # ...and so has the proxy's log line of this request (written just after the response)
    wait_until(lambda: '"request_id":"hit-2"' in (tmp / "access.log").read_text(), timeout=5)


@pytest.mark.postgres  # the server reads the test database (market data, sessions)
def test_a_cached_etag_still_gets_304(stack):
    base, _ = stack
    url = f"{base}/api/v2/market/ticker?limit=2"
    etag = _get(url)[1]["etag"]
    status, headers, body = _get(url, **{"If-None-Match": etag})
    assert (status, body) == (304, b"")
    assert headers["etag"] == etag


@pytest.mark.postgres  # the server reads the test database (market data, sessions)
def test_errors_and_private_reads_are_never_served_from_the_cache(stack):
    base, _ = stack
    for _ in range(2):
        status, headers, body = _get(f"{base}/api/v2/market/NOPE-COIN/price")
        assert status == 404 and headers["x-cache-status"] != "HIT"
        assert json.loads(body)["code"]
        status, headers, _ = _get(f"{base}/api/v2/user/profile")
        assert status == 401 and "x-cache-status" not in headers


@pytest.mark.redis  # the server must see the snapshot this test publishes to the shared cache
@pytest.mark.postgres
@pytest.mark.django_db
def test_a_new_ingest_shows_through_the_proxy_within_seconds(stack):
    import time

    from django.utils import timezone

    from markets import snapshot
    from markets.models import Asset, Ticker

    base, _ = stack
    url = f"{base}/api/v2/market/BTC/price"

    def publish(price: str) -> None:
        now = timezone.now()
        Ticker.objects.update_or_create(
            asset=Asset.objects.get(symbol="BTC"),
            quote="usd",
            defaults={"price": price, "source": "coingecko", "last_updated": now, "fetched_at": now},
        )
        snapshot.snapshot_build(quote="usd")  # what an ingest publishes to the shared cache

    def served_price() -> float | None:
        status, _, body = _get(url)
        return json.loads(body)["price"] if status == 200 else None

    publish("50000")
    wait_until(lambda: served_price() == 50000.0, timeout=10)
    publish("51234.5")
    started = time.monotonic()
    wait_until(lambda: served_price() == 51234.5, timeout=10)
    # the web process rechecks the shared snapshot once a second, the proxy caches for one more
    assert time.monotonic() - started < 3.5


def test_the_proxy_caps_open_sockets_per_address_across_ws_processes(stack):
    import websockets

    base, _ = stack
    url = base.replace("http://", "ws://") + "/ws"
    conf = (ROOT / "deploy/nginx/coinlink-ws.inc").read_text()
    cap = int(re.search(r"limit_conn coinlink_ws_per_ip (\d+);", conf).group(1))

    async def scenario():
        sockets = [await websockets.connect(url, origin=ORIGIN, open_timeout=10) for _ in range(cap)]
        try:
            with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
                await websockets.connect(url, origin=ORIGIN, open_timeout=10)
            response = refused.value.response
            assert response.status_code == 429
            assert response.headers["Retry-After"] == "30"
            body = json.loads(response.body)
            assert body["code"] == "too_many_connections" and body["detail"]
            assert body["trace_id"] == response.headers["X-Request-ID"]
            await sockets.pop().close()  # a closed socket frees its place
            await asyncio.sleep(0.2)
            sockets.append(await websockets.connect(url, origin=ORIGIN, open_timeout=10))
        finally:
            for socket in sockets:
                await socket.close()

    asyncio.run(scenario())


# nginx's own refusals, in the contract's error shape rather than nginx's HTML pages.


def _error_shape(headers: dict[str, str], body: bytes) -> dict:
    """The body of an error response as a client reads it: JSON with a detail and the request's id."""
    assert headers["content-type"] == "application/json"
    error = json.loads(body)
    assert error["detail"] and error["code"]
    assert error["trace_id"] == headers["x-request-id"]
    return error


def _post(url: str, size: int, **headers: str) -> tuple[int, dict[str, str], bytes]:
    body = b'{"pad": "' + b"x" * (size - 11) + b'"}'
    return http_fetch(url, {"Host": "localhost", "Content-Type": "application/json", **headers}, timeout=30, data=body)


def test_a_body_over_the_proxy_limit_gets_a_json_413_with_the_request_id(stack):
    base, _ = stack
    status, headers, body = _post(f"{base}/api/v2/auth/login", 3 * 1024 * 1024, **{"X-Request-ID": "big-body-1"})
    assert status == 413
    error = _error_shape(headers, body)
    assert error["code"] == "payload_too_large" and error["trace_id"] == "big-body-1"


def test_a_body_the_app_refuses_passes_the_proxy_with_the_apps_own_answer(stack):
    from django.conf import settings

    base, _ = stack
    # Over the app's limit, under the proxy's; up to 1 MiB over it. Every time: an app that answered
    # without reading the body reset the connection under the proxy, which then now and then said 502.
    for extra in range(0, 1024 * 1024, 64 * 1024):
        size = settings.MAX_REQUEST_BODY_BYTES + 1024 + extra
        status, headers, body = _post(f"{base}/api/v2/auth/login", size, **{"X-Request-ID": f"app-body-{extra}"})
        assert status == 413, (size, status, body[:200])
        error = _error_shape(headers, body)
        assert error["detail"] == f"Request body larger than {settings.MAX_REQUEST_BODY_BYTES} bytes."
        assert error["trace_id"] == f"app-body-{extra}"


def test_an_over_long_uri_gets_a_json_414(stack):
    base, _ = stack
    status, headers, body = _get(f"{base}/api/v2/market/ticker?q={'a' * 10_000}", **{"X-Request-ID": "long-uri-1"})
    assert status == 414
    # nginx stops reading before the headers, so the id is one the proxy made up, and says so in both places
    assert _error_shape(headers, body)["code"] == "uri_too_long"


def test_an_over_long_header_gets_a_json_400_with_the_request_id(stack):
    base, _ = stack
    status, headers, body = _get(
        f"{base}/api/v2/market/ticker", **{"X-Request-ID": "big-header-1", "X-Pad": "a" * 10_000}
    )
    assert status == 400
    error = _error_shape(headers, body)
    assert error["code"] == "request_header_too_large" and error["trace_id"] == "big-header-1"


@pytest.fixture(scope="module")
def proxy_without_app(tmp_path_factory):
    """The shipped config with nothing listening behind it: the app is down or restarting."""
    tmp = tmp_path_factory.mktemp("proxy-no-app")
    proxy_port = free_port()
    proxy = loopback.start(tmp, web_port=free_port(), ws_port=free_port(), proxy_port=proxy_port)
    base = f"http://127.0.0.1:{proxy_port}"
    try:
        wait_until(lambda: http_get(f"{base}/proxy-health")[0] == 200, timeout=10)
        yield base
    finally:
        stop(proxy)


def test_with_the_app_down_api_requests_get_a_json_502_worth_retrying(proxy_without_app):
    status, headers, body = _get(f"{proxy_without_app}/api/v2/market/ticker", **{"X-Request-ID": "down-1"})
    assert status == 502
    error = _error_shape(headers, body)
    assert error["code"] == "upstream_unavailable" and error["trace_id"] == "down-1"
    assert headers["retry-after"] == "5"


def test_with_the_ws_server_down_the_handshake_gets_a_json_502(proxy_without_app):
    import websockets

    url = proxy_without_app.replace("http://", "ws://") + "/ws"

    async def attempt():
        async with websockets.connect(url, origin=ORIGIN, open_timeout=10):
            pass

    with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
        asyncio.run(attempt())
    response = refused.value.response
    assert response.status_code == 502
    headers = {name.lower(): value for name, value in response.headers.raw_items()}
    assert _error_shape(headers, response.body)["code"] == "upstream_unavailable"


def test_a_request_id_the_app_would_refuse_is_replaced_and_the_error_stays_json(proxy_without_app):
    status, headers, body = _get(f"{proxy_without_app}/api/v2/market/ticker", **{"X-Request-ID": 'x", "code": "ok'})
    assert status == 502
    error = _error_shape(headers, body)  # parses: the client's quotes never reach the body
    assert error["code"] == "upstream_unavailable" and error["trace_id"] != 'x", "code": "ok'
