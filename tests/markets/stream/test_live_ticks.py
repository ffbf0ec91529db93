"""Live ticks end to end in one process: the fake Coinbase feed -> the streamer -> REST and /ws."""

from __future__ import annotations

import time

import pytest

from tests.markets.stream.conftest import FLUSH_MS, asnapshot_price, until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis, pytest.mark.postgres]


async def test_a_trade_reaches_a_feed_client_and_the_rest_ticker_within_one_flush(
    feed, streamer, store_prices, open_feed, anon_client
):
    await store_prices({"BTC": "60000", "ETH": "3000"})
    client = await open_feed()
    assert client.accepted
    await client.receive_until("crypto_ticker_update")  # the snapshot on connect
    async with streamer(feed.url):
        await until(feed.subscribed)
        sent = time.monotonic()
        feed.tick("BTC-USD", "65000.5", open_24h="64000")
        frame = await client.receive_until("crypto_ticker_update", timeout=5)
        received = time.monotonic() - sent

    btc = frame["data"][0]
    assert [t["symbol"] for t in frame["data"]] == ["BTC"]  # only what changed
    assert btc["price"] == 65000.5
    assert btc["source"] == "coinbase_stream"
    assert btc["change_24h"] == 1000.5
    assert btc["change_percent_24h"] == pytest.approx(1.5633, abs=1e-4)
    assert btc["market_cap"] == 5000000000.0  # still the poll's
    # One flush period, plus a generous allowance for this shared two-core machine.
    assert received < FLUSH_MS / 1000 + 2.0
    rest = await until(lambda: anon_client.get("/api/v2/market/ticker?symbols=BTC&vs=usd").json()["data"])
    assert rest[0]["price"] == 65000.5 and rest[0]["source"] == "coinbase_stream"
    assert (await asnapshot_price("ETH"))["source"] == "coingecko"  # no trade, no change
