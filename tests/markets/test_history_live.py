"""The history endpoint against the real `manage.py serve` in the embedded default: a burst of requests
for an empty series queues one backfill, the in-process schedule fills it, the ingest keeps running."""

from __future__ import annotations

import http.server
import json
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.markets.conftest import coingecko_rows, recorded
from tests.realtime.servers import EmbeddedServer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres, pytest.mark.slow]

URL = "/api/v2/market/SOL/history?interval=1d&period=7d"


class FakeProviders(http.server.BaseHTTPRequestHandler):
    """CoinGecko prices BTC only; Coinbase has daily SOL-USD candles (recorded rows, re-timed) and nothing else."""

    def do_GET(self):
        self.server.paths.append(self.path)
        if self.path.startswith("/coins/markets"):
            self._json(200, coingecko_rows({"bitcoin": 50000.0}))
        elif self.path.startswith("/products/SOL-USD/candles"):
            today = int(time.time()) // 86400 * 86400
            rows = recorded("coinbase_exchange_candles.json")[:5]
            self._json(200, [[today - (i + 1) * 86400, *row[1:]] for i, row in enumerate(rows)])
        else:
            self._json(404, {"message": "NotFound"})

    def _json(self, status: int, body) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def providers():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeProviders)
    server.daemon_threads, server.paths = True, []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def get(url: str) -> tuple[dict, dict]:
    with urllib.request.urlopen(url, timeout=20) as response:  # noqa: S310 - a loopback test server
        return {k.lower(): v for k, v in response.headers.items()}, json.loads(response.read())  # any server's case


def until(predicate, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.5)
    raise AssertionError("not within the time allowed")


def test_a_burst_queues_one_backfill_that_the_embedded_schedule_fills(providers):
    from markets.catalogue import catalogue_load

    catalogue_load()
    base = f"http://127.0.0.1:{providers.server_port}"
    env = {"REDIS_URL": "", "COINGECKO_BASE_URL": base, "COINBASE_EXCHANGE_BASE_URL": base, "MARKET_QUOTES": "usd"}
    with EmbeddedServer("serve", **env) as server:
        with ThreadPoolExecutor(8) as pool:
            burst = list(pool.map(lambda _: get(server.http_url + URL), range(24)))
        for headers, body in burst:
            assert body == {"symbol": "SOL", "interval": "1d", "vs": "usd", "candles": []}
            assert headers["x-history-backfill"] == "pending"

        headers, body = until(lambda: (r := get(server.http_url + URL))[1]["candles"] and r, timeout=90)
        ticker = until(lambda: (r := get(server.http_url + "/api/v2/market/ticker")[1])["data"] and r, timeout=60)

    assert len(body["candles"]) == 5 and "x-history-backfill" not in headers
    fetches = [p for p in providers.paths if p.startswith("/products/SOL-USD/candles")]
    assert 1 <= len(fetches) <= 2  # one backfill of the 365-day window: two pages of 300 days at most
    assert [t["symbol"] for t in ticker["data"]] == ["BTC"]
