"""Fan-out mechanics: one publish per cycle, frames encoded once, slow sockets coalesced, thread hand-off."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest
from asgiref.sync import sync_to_async

from coinlink import metrics
from realtime import bus, events
from realtime.hub import hub_current
from realtime.outbox import Outbox

pytestmark = pytest.mark.django_db(transaction=True)


def _ticker(symbol: str, price: float) -> dict:
    return {
        "symbol": symbol, "name": symbol.title(), "price": price, "change_24h": 1.0, "change_percent_24h": 0.1,
        "volume_24h": 10.0, "market_cap": 100.0, "rank": 1, "last_updated": "2026-11-25T15:00:00Z",
        "source": "coingecko", "stale": False,
    }  # fmt: skip


class _Socket:
    """A hub member with a real Outbox whose `send` we control."""

    def __init__(self, symbols: set[str], *, gate: asyncio.Event | None = None):
        self.frames: list[dict] = []
        self.gate = gate
        self.outbox = Outbox(self._send)
        self.group_key = ("usd", frozenset(symbols))
        self.outbox.release()

    async def _send(self, message: dict) -> None:
        if self.gate is not None:
            await self.gate.wait()
        self.frames.append(json.loads(message["text"]) if "text" in message else message)


async def _publish(**kwargs) -> None:
    await sync_to_async(events.ticker_update_publish)(**kwargs)


async def _until(predicate, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def test_it_splices_seq_into_a_preencoded_frame():
    data = [_ticker("BTC", 65000.5), _ticker("ETH", 3000.25)]
    prefix = events.ticker_update_prefix(data=data, timestamp="2026-11-25T15:00:00.000000Z", stale=False)
    for seq in (1, 42, 10**9):
        assert json.loads(events.ticker_update_text(prefix, seq)) == {
            "type": "crypto_ticker_update",
            "data": data,
            "timestamp": "2026-11-25T15:00:00.000000Z",
            "stale": False,
            "seq": seq,
        }


async def test_it_coalesces_a_slow_socket_without_delaying_the_others(transactional_db):
    hub = hub_current()
    await hub.start()
    gate = asyncio.Event()
    fast, slow = _Socket({"BTC", "ETH"}), _Socket({"BTC", "ETH"}, gate=gate)
    writers = []
    for socket in (fast, slow):
        hub.add(socket)
        writers.append(asyncio.ensure_future(socket.outbox.run()))
    dropped = metrics.WS_FRAMES_DROPPED.labels("crypto_ticker_update")._value.get()
    try:
        await _publish(quote="usd", tickers=[_ticker("BTC", 1.0)], observed_at=time.time())
        await _until(lambda: len(fast.frames) == 1)
        await _publish(quote="usd", tickers=[_ticker("BTC", 2.0)], observed_at=time.time())
        await _publish(quote="usd", tickers=[_ticker("ETH", 3.0)], observed_at=time.time())
        await _until(lambda: len(fast.frames) == 3)
        assert slow.frames == []  # still stuck writing its first frame; the fast socket got everything

        gate.set()
        await _until(lambda: len(slow.frames) == 2)
    finally:
        for socket, writer in zip((fast, slow), writers, strict=True):
            hub.remove(socket)
            writer.cancel()
    assert [f["seq"] for f in fast.frames] == [1, 2, 3]
    assert [f["seq"] for f in slow.frames] == [1, 2]  # no gap: seq counts frames written
    assert slow.frames[0]["data"][0]["price"] == 1.0
    assert {t["symbol"]: t["price"] for t in slow.frames[1]["data"]} == {"BTC": 2.0, "ETH": 3.0}
    assert metrics.WS_FRAMES_DROPPED.labels("crypto_ticker_update")._value.get() == dropped + 1


async def test_it_closes_a_socket_whose_control_queue_overflows(transactional_db):
    from realtime.outbox import MAX_QUEUED_FRAMES

    gate = asyncio.Event()
    socket = _Socket(set(), gate=gate)
    writer = asyncio.ensure_future(socket.outbox.run())
    for _ in range(MAX_QUEUED_FRAMES + 2):
        socket.outbox.push_frame(events.pong_frame())
    gate.set()
    await asyncio.wait_for(writer, 2)
    assert socket.frames[-1] == {"type": "websocket.close", "code": 1013}


async def test_it_encodes_a_cycle_once_per_distinct_symbol_set(transactional_db, monkeypatch):
    hub = hub_current()
    await hub.start()
    sockets = [_Socket({"BTC", "ETH"}) for _ in range(5)] + [_Socket({"BTC"}) for _ in range(3)]
    writers = []
    for socket in sockets:
        hub.add(socket)
        writers.append(asyncio.ensure_future(socket.outbox.run()))
    encoded = []
    real_prefix = events.ticker_update_prefix
    monkeypatch.setattr(events, "ticker_update_prefix", lambda **kw: encoded.append(kw) or real_prefix(**kw))
    try:
        await _publish(quote="usd", tickers=[_ticker("BTC", 1.0), _ticker("ETH", 2.0)], observed_at=time.time())
        await _until(lambda: all(s.frames for s in sockets))
    finally:
        for socket, writer in zip(sockets, writers, strict=True):
            hub.remove(socket)
            writer.cancel()
    assert len(encoded) == 2  # {BTC, ETH} and {BTC}: not one per socket
    assert [len(s.frames[0]["data"]) for s in sockets] == [2] * 5 + [1] * 3


async def test_it_hands_publishes_from_another_thread_to_the_sockets(open_feed, store_prices):
    """Embedded mode's scheduler thread (or a Celery worker with Redis) publishes from outside the loop."""
    await store_prices({"BTC": "1"})
    feed = await open_feed()
    await feed.receive_type("connected")
    await feed.receive_type("crypto_ticker_update")
    thread = threading.Thread(
        target=events.ticker_update_publish,
        kwargs={"quote": "usd", "tickers": [_ticker("BTC", 7.0)], "observed_at": time.time()},
    )
    thread.start()
    thread.join()
    frame = await feed.receive_type("crypto_ticker_update")
    assert frame["data"][0]["price"] == 7.0


async def test_it_records_feed_latency_from_ingest_to_write(open_feed, store_prices):
    await store_prices({"BTC": "1"})
    feed = await open_feed()
    await feed.receive_type("connected")
    await feed.receive_type("crypto_ticker_update")
    before = metrics.FEED_LATENCY._sum.get()
    await sync_to_async(events.ticker_update_publish)(
        quote="usd", tickers=[_ticker("BTC", 2.0)], observed_at=time.time() - 5
    )
    await feed.receive_type("crypto_ticker_update")
    await _until(lambda: metrics.FEED_LATENCY._sum.get() - before >= 5)  # folded in a few times a second


@pytest.mark.redis
async def test_it_holds_one_redis_subscription_per_process_whatever_the_socket_count(open_feed, store_prices):
    import redis.asyncio as aioredis
    from django.conf import settings

    await store_prices({"BTC": "1"})
    feeds = [await open_feed() for _ in range(5)]
    for feed in feeds:
        await feed.receive_type("connected")
        await feed.receive_type("crypto_ticker_update")
    client = aioredis.Redis.from_url(settings.CONFIG.redis_url)
    listener = client.pubsub(ignore_subscribe_messages=True)
    try:
        [(_, subscribers)] = await client.pubsub_numsub(bus.channel_name())
        assert subscribers == 1

        await listener.subscribe(bus.channel_name())
        await store_prices({"BTC": "2"})
        for feed in feeds:
            await feed.receive_type("crypto_ticker_update")
        published, deadline = [], time.monotonic() + 0.5
        while time.monotonic() < deadline:
            message = await listener.get_message(ignore_subscribe_messages=True, timeout=0.1)
            if message is not None:
                published.append(message)
        assert len(published) == 1  # one PUBLISH for the cycle, not one per socket
    finally:
        await listener.aclose()
        await client.aclose()


@pytest.mark.redis
async def test_readyz_channel_layer_counts_the_processes_listening_on_the_feed(open_feed):
    from coinlink.ops import CHECKS

    check = sync_to_async(CHECKS["channel_layer"])
    before = await check()
    feed = await open_feed()
    await feed.receive_type("connected")

    assert before == {"backend": "redis", "subscribers": 0}  # no hub in this process serves sockets yet
    assert await check() == {"backend": "redis", "subscribers": 1, "subscribed": True}


@pytest.mark.redis
async def test_readyz_fails_the_channel_layer_while_this_processs_subscription_is_down(open_feed):
    import redis.asyncio as aioredis
    from django.conf import settings
    from django.test import Client

    from realtime.bus import subscriber_name

    feed = await open_feed()
    await feed.receive_type("connected")
    hub = hub_current()
    admin = aioredis.Redis.from_url(settings.CONFIG.redis_url)
    try:
        for client in await admin.client_list():
            if client["name"] == subscriber_name():
                await admin.client_kill(client["addr"])
        await _until(lambda: not hub.subscribed)
        down = (await sync_to_async(Client().get)("/readyz")).json()
        await _until(lambda: hub.subscribed, timeout=15)  # the hub reconnects by itself
        up = (await sync_to_async(Client().get)("/readyz")).json()
    finally:
        await admin.aclose()

    assert down["checks"]["channel_layer"]["status"] == "fail"
    assert down["checks"]["channel_layer"]["error"] == "FeedUnsubscribed"
    assert up["checks"]["channel_layer"]["status"] == "ok"


@pytest.mark.redis
def test_it_namespaces_the_channel_with_the_redis_db(settings):
    assert bus.channel_name() == f"coinlink:{settings.CONFIG.redis_url.rsplit('/', 1)[1]}:realtime"


@pytest.mark.redis
async def test_it_resubscribes_after_losing_redis_and_resends_a_snapshot(open_feed, store_prices):
    import redis.asyncio as aioredis
    from django.conf import settings

    from realtime.bus import subscriber_name

    await store_prices({"BTC": "1"})
    feed = await open_feed()
    await feed.receive_type("connected")
    await feed.receive_type("crypto_ticker_update")

    client = aioredis.Redis.from_url(settings.CONFIG.redis_url)
    try:
        ours = [c["id"] for c in await client.client_list() if c.get("name") == subscriber_name()]
        assert len(ours) == 1
        await client.client_kill_filter(_id=ours[0])
        # Missed while the subscription was down: only the resync snapshot can bring it.
        await store_prices({"BTC": "2"})
        frame = await feed.receive_until("crypto_ticker_update", timeout=5)
        while frame["data"][0]["price"] != 2.0:
            frame = await feed.receive_until("crypto_ticker_update", timeout=5)
        await store_prices({"BTC": "3"})  # and live updates flow again
        assert (await feed.receive_until("crypto_ticker_update", timeout=5))["data"][0]["price"] == 3.0
    finally:
        await client.aclose()


async def test_it_retires_a_socket_whose_send_fails_without_disturbing_the_others(transactional_db):
    hub = hub_current()
    await hub.start()

    class _Gone(_Socket):
        async def _send(self, message: dict) -> None:
            raise ConnectionResetError("peer went away")

    gone, fine = _Gone({"BTC"}), _Socket({"BTC"})
    writers = []
    for socket in (gone, fine):
        hub.add(socket)
        writers.append(asyncio.ensure_future(socket.outbox.run()))
    await asyncio.sleep(0)
    try:
        await _publish(quote="usd", tickers=[_ticker("BTC", 1.0)], observed_at=time.time())
        await _until(lambda: len(fine.frames) == 1)
        await asyncio.wait_for(writers[0], 1)  # the failed socket's writer ends quietly
    finally:
        for socket, writer in zip((gone, fine), writers, strict=True):
            hub.remove(socket)
            writer.cancel()
    assert gone.outbox.close_code == 1006
    assert fine.frames[0]["seq"] == 1


async def test_it_keeps_the_snapshot_cache_bounded_whatever_clients_subscribe_to(transactional_db, monkeypatch):
    from realtime import hub as hub_module

    monkeypatch.setattr(hub_module, "MAX_CACHED_SNAPSHOTS", 3)
    monkeypatch.setattr(hub_module, "SNAPSHOT_TTL_SECONDS", 0.0)
    hub = hub_current()
    for symbols in (["BTC"], ["ETH"], ["SOL"], ["BTC", "ETH"], ["DOGE"], ["ADA"], ["XRP"]):
        await hub.snapshot(quote="usd", symbols=frozenset(symbols))
    assert len(hub._snapshots) <= 3


async def test_it_takes_a_burst_of_100_concurrent_connects(open_feed, store_prices, settings, monkeypatch):
    import realtime.async_selectors

    settings.WS_MAX_PER_IP = 200
    await store_prices({"BTC": "1"})
    reads, real_snapshot = [], realtime.async_selectors.ticker_snapshot

    async def counting_snapshot(**kwargs):
        reads.append(kwargs)
        return await real_snapshot(**kwargs)

    monkeypatch.setattr(realtime.async_selectors, "ticker_snapshot", counting_snapshot)
    feeds = await asyncio.gather(*(open_feed(client=("127.0.0.1", port)) for port in range(40000, 40100)))
    assert all(feed.accepted for feed in feeds)
    for feed in feeds:
        await feed.receive_type("connected")
        assert (await feed.receive_type("crypto_ticker_update"))["data"][0]["symbol"] == "BTC"
    assert len(reads) <= 2  # sockets connecting together share one snapshot read (and one encoding)


async def test_a_cycle_from_a_publisher_that_leaves_out_the_top_symbols_still_reaches_its_sockets():
    """A process of another release may publish without `top` during a rolling deploy: the hub keeps its list."""
    hub = hub_current()
    socket = _Socket({"BTC"})
    hub.add(socket)
    writer = asyncio.ensure_future(socket.outbox.run())
    try:
        message = {"kind": "tickers", "quote": "usd", "tickers": [_ticker("BTC", 5.0)], "observed_at": time.time()}
        hub.dispatch(json.dumps(message))
        await _until(lambda: socket.frames)
    finally:
        hub.remove(socket)
        writer.cancel()
    assert socket.frames[0]["data"] == [_ticker("BTC", 5.0)]
