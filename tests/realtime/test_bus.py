"""The feed's bus on the wire: what one ingest cycle publishes, which bench/ and the processes of the
previous release (during a rolling deploy) read."""

from __future__ import annotations

import json
import time

import pytest

from realtime import bus

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]


async def test_an_ingest_cycle_is_one_json_message_with_its_tickers_and_the_current_top_symbols(store_prices):
    import redis.asyncio as aioredis
    from django.conf import settings

    client = aioredis.Redis.from_url(settings.CONFIG.redis_url)
    listener = client.pubsub(ignore_subscribe_messages=True)
    try:
        await listener.subscribe(bus.channel_name())
        observed = await store_prices({"BTC": "65000.5"})
        message, deadline = None, time.monotonic() + 10
        while message is None and time.monotonic() < deadline:
            message = await listener.get_message(ignore_subscribe_messages=True, timeout=0.5)
    finally:
        await listener.aclose()
        await client.aclose()

    assert message is not None
    published = json.loads(message["data"])
    assert list(published) == ["kind", "quote", "tickers", "observed_at", "top"]
    assert (published["kind"], published["quote"], published["observed_at"]) == ("tickers", "usd", observed)
    assert [(t["symbol"], t["price"]) for t in published["tickers"]] == [("BTC", 65000.5)]
    # The wiring reads the top symbols for the feed: the catalogue's first 20 by rank, priced or not.
    assert len(published["top"]) == 20 and "BTC" in published["top"]


def test_the_channel_is_named_after_the_redis_db_without_django_settings():
    assert bus.channel_name(redis_url="redis://cache.internal:6380/4") == "coinlink:4:realtime"
    assert bus.channel_name(redis_url="redis://cache.internal:6380") == "coinlink:0:realtime"
