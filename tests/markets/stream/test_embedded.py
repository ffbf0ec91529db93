"""The embedded default: `manage.py serve` (what scripts/run starts) streams ticks with nothing configured
but the feed's address, and /readyz reports the stream without failing readiness when it is down."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time

import pytest
import websockets

from tests.coinlink.procs import ROOT, free_port, http_get, stop, wait_until
from tests.realtime.servers import database_url_of_tests

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


@pytest.fixture
def embedded_server(feed):
    port, closed = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}  # no Redis: the embedded default
    env.update(
        DATABASE_URL=database_url_of_tests(),
        COINBASE_STREAM_URL=feed.url,
        MARKET_STREAM_FLUSH_MS="200",
        # The poll runs too; offline here, so point it at a closed port to fail fast.
        COINGECKO_BASE_URL=f"http://127.0.0.1:{closed}/api/v3",
        COINBASE_EXCHANGE_BASE_URL=f"http://127.0.0.1:{closed}",
        WS_ALLOWED_ORIGINS=f"http://127.0.0.1:{port}",
        LOG_LEVEL="warning",
    )
    command = [sys.executable, "manage.py", "serve", "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: http_get(f"http://127.0.0.1:{port}/health")[0] == 200, timeout=30)
        yield f"127.0.0.1:{port}"
    finally:
        stop(process)


async def _frame(ws, frame_type: str, timeout: float = 10) -> dict:
    async with asyncio.timeout(timeout):
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] == frame_type:
                return frame


async def test_scripts_run_streams_ticks_to_a_real_server_and_readyz_reports_the_stream(
    feed, store_prices, embedded_server
):
    await store_prices({"BTC": "60000"})
    await asyncio.to_thread(wait_until, feed.subscribed, 30)
    async with websockets.connect(f"ws://{embedded_server}/ws", origin=f"http://{embedded_server}") as ws:
        await _frame(ws, "crypto_ticker_update")  # the snapshot on connect
        sent = time.monotonic()
        feed.tick("BTC-USD", "65000.25")
        frame = await _frame(ws, "crypto_ticker_update")
        elapsed = time.monotonic() - sent
    assert [(t["symbol"], t["price"], t["source"]) for t in frame["data"]] == [("BTC", 65000.25, "coinbase_stream")]
    assert elapsed < 0.2 + 2.0  # one flush, and slack for a shared machine
    status, body = await asyncio.to_thread(http_get, f"http://{embedded_server}/readyz")
    stream = json.loads(body)["checks"]["market_stream"]
    assert status == 200
    assert stream["status"] == "ok" and stream["connected"] is True and stream["products"] > 50
    assert stream["last_message_age_seconds"] < 5


def test_readyz_reports_a_down_stream_without_failing_readiness(client):
    response = client.get("/readyz")
    stream = response.json()["checks"]["market_stream"]
    assert response.status_code == 200
    assert (stream["status"], stream["connected"], stream["last_message_age_seconds"]) == ("down", False, None)
