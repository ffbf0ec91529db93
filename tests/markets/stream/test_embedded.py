"""The embedded default: `manage.py serve` (what scripts/run starts) streams ticks with nothing configured
but the feed's address, and /readyz reports the stream without failing readiness when it is down."""

from __future__ import annotations

import asyncio
import json
import time
from functools import partial

import pytest
import websockets

from tests.coinlink.procs import http_get, wait_until
from tests.realtime.test_processes import _frame

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


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
    assert (await asyncio.to_thread(http_get, f"http://{embedded_server}/readyz"))[0] == 200
    # The leader refreshes this status at every flush; poll a little in case one ran late under load.
    readyz = partial(http_get, f"http://{embedded_server}/readyz")
    stream = await asyncio.to_thread(wait_until, lambda: _stream_status(readyz, "ok"), 5)
    assert stream["connected"] is True and stream["products"] > 50
    assert stream["last_message_age_seconds"] < 5


def _stream_status(readyz, wanted: str) -> dict | None:
    stream = json.loads(readyz()[1])["checks"]["market_stream"]
    return stream if stream["status"] == wanted else None


def test_readyz_reports_a_down_stream_without_failing_readiness(client):
    response = client.get("/readyz")
    stream = response.json()["checks"]["market_stream"]
    assert response.status_code == 200
    assert (stream["status"], stream["connected"], stream["last_message_age_seconds"]) == ("down", False, None)
