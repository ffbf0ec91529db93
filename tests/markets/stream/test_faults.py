"""The streamer survives the network: stalls, drops, garbage, `error` frames, refused and offline feeds."""

from __future__ import annotations

import json
import logging
import time

import pytest
from prometheus_client import REGISTRY

from tests.coinlink.procs import free_port
from tests.fake_coinbase_feed import FakeCoinbaseFeed
from tests.markets.stream.conftest import asnapshot_price, until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis, pytest.mark.postgres]


def _dropped(reason: str) -> float:
    return REGISTRY.get_sample_value("coinlink_market_stream_dropped_total", {"reason": reason}) or 0.0


def _stream_lines(caplog, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "markets.stream" and text in r.getMessage()]


async def test_a_silent_feed_is_left_and_rejoined_within_the_idle_limit(feed, streamer, store_prices, caplog):
    await store_prices({"BTC": "60000"})
    async with streamer(feed.url):
        await until(feed.subscribed)
        first = feed.connections
        feed.silence()  # TCP stays open, nothing arrives
        silent_at = time.monotonic()
        await until(lambda: feed.connections > first, timeout=10)
        rejoined = time.monotonic() - silent_at
        feed.silence(False)
        await until(feed.subscribed)
        feed.tick("BTC-USD", "61000")
        await until(lambda: _price_is("BTC", 61000.0))
    # Idle limit 1 s, then a backoff of at most 0.5 s; the rest is slack for a loaded machine.
    assert rejoined < 1.0 + 0.5 + 2.0
    assert len(_stream_lines(caplog, "stalled")) == 1


async def _price_is(symbol: str, price: float) -> bool:
    ticker = await asnapshot_price(symbol)
    return ticker is not None and ticker["price"] == price


GARBAGE = {
    "not json": ("unparsable", "{not json"),
    "a list": ("unparsable", "[1, 2]"),
    "NaN price": ("invalid", {"price": "NaN"}),
    "negative price": ("invalid", {"price": "-5"}),
    "zero price": ("invalid", {"price": "0"}),
    "huge price": ("invalid", {"price": "1e400"}),
    "price as an object": ("invalid", {"price": {"$gt": 1}}),
    "crossed book": ("invalid", {"best_bid": "70000", "best_ask": "69000"}),
    "trade in the future": ("invalid", {"time": "2999-01-01T00:00:00Z"}),
    "no time": ("invalid", {"time": None}),
    "boolean sequence": ("invalid", {"sequence": True}),
    "unknown product": ("unknown_product", {"product_id": "BTC-XYZ"}),
    "look-alike product": ("unknown_product", {"product_id": "BTC-USD\u200b"}),
}


async def test_garbage_never_reaches_the_snapshot_and_the_connection_survives_it(feed, streamer, store_prices):
    await store_prices({"BTC": "60000"})
    before = {reason: _dropped(reason) for reason, _ in GARBAGE.values()}
    async with streamer(feed.url):
        await until(feed.subscribed)
        connections = feed.connections
        for _, change in GARBAGE.values():
            if isinstance(change, str):
                feed.send_raw(change)
            else:
                feed.send_raw(json.dumps({**feed.ticker_frame("BTC-USD", "99999"), **change}))
        feed.send_raw(json.dumps({"type": "l2update", "product_id": "BTC-USD", "changes": []}))  # ignored
        feed.tick("BTC-USD", "60500")
        await until(lambda: _price_is("BTC", 60500.0))
        await until(lambda: _dropped("invalid") - before["invalid"] >= 9)
        assert feed.connections == connections
    assert _dropped("unparsable") - before["unparsable"] == 2
    assert _dropped("invalid") - before["invalid"] == 9
    assert _dropped("unknown_product") - before["unknown_product"] == 2


async def test_an_error_frame_is_logged_with_its_reason_and_a_dropped_feed_is_rejoined(
    feed, streamer, store_prices, caplog
):
    await store_prices({"BTC": "60000"})
    async with streamer(feed.url):
        await until(feed.subscribed)
        feed.send_error("Failed to subscribe", "BAD-USD is not a valid product")
        feed.drop()
        await until(feed.subscribed)
        feed.tick("BTC-USD", "62000")
        await until(lambda: _price_is("BTC", 62000.0))
    assert any("reason: BAD-USD is not a valid product" in r.getMessage() for r in caplog.records)
    assert len(_stream_lines(caplog, "market stream down")) == 1


async def test_a_product_coinbase_rejects_is_logged_once_and_skipped(products, streamer, store_prices, caplog):
    await store_prices({"BTC": "60000"})
    listed = {p: v for p, v in products.items() if p != "ETH-GBP"}
    with FakeCoinbaseFeed(products=listed, heartbeat_seconds=0.2) as feed:
        async with streamer(feed.url):
            await until(feed.subscribed)
            feed.tick("BTC-USD", "63000")
            await until(lambda: _price_is("BTC", 63000.0))
    assert "ETH-GBP" in feed.subscriptions[0]["product_ids"]
    assert "ETH-GBP" not in feed.subscriptions[-1]["product_ids"]
    assert len(_stream_lines(caplog, "skips ETH-GBP")) == 1


async def test_offline_it_logs_one_line_per_state_change_not_per_attempt(products, streamer, store_prices, caplog):
    caplog.set_level(logging.INFO, logger="markets.stream")
    await store_prices({"BTC": "60000"})
    port = free_port()  # nothing listens: every attempt is refused
    attempts = REGISTRY.get_sample_value("coinlink_market_stream_reconnects_total") or 0.0
    async with streamer(f"ws://127.0.0.1:{port}"):
        await until(lambda: (REGISTRY.get_sample_value("coinlink_market_stream_reconnects_total") or 0) - attempts > 5)
        assert len(_stream_lines(caplog, "market stream down")) == 1
        with FakeCoinbaseFeed(products=products, heartbeat_seconds=0.2, port=port) as feed:
            await until(feed.subscribed)
            await until(lambda: _stream_lines(caplog, "connected to"))
        await until(lambda: len(_stream_lines(caplog, "market stream down")) == 2)
    assert len(_stream_lines(caplog, "market stream down")) == 2
    assert len(_stream_lines(caplog, "connected to")) == 1


async def test_an_oversized_frame_ends_that_connection_not_the_streamer(feed, streamer, store_prices):
    await store_prices({"BTC": "60000"})
    async with streamer(feed.url):
        await until(feed.subscribed)
        connections = feed.connections
        feed.send_raw('{"type":"ticker","padding":"' + "x" * (2 << 20) + '"}')  # past the 1 MiB limit
        await until(lambda: feed.connections > connections and feed.subscribed())
        feed.tick("BTC-USD", "61500")
        await until(lambda: _price_is("BTC", 61500.0))
