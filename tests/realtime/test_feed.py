"""The `/ws` price feed protocol (API.md, WebSocket), driven through the real coinlink.asgi application.

Prices are written with the real ingest write (markets.services.tickers_store), whose tickers_changed
hook reaches the feed through coinlink.wiring and realtime.events -- in-process embedded, or through
Redis pub/sub when REDIS_URL is set.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db(transaction=True)

# The shipped catalogue's first 20 by rank.
TOP_20 = [
    "BTC",
    "ETH",
    "USDT",
    "XRP",
    "BNB",
    "SOL",
    "USDC",
    "DOGE",
    "TRX",
    "ADA",
    "STETH",
    "WBTC",
    "LINK",
    "AVAX",
    "XLM",
    "SUI",
    "TON",
    "SHIB",
    "HBAR",
    "DOT",
]


def _symbols(frame: dict) -> list[str]:
    return [t["symbol"] for t in frame["data"]]


async def test_it_sends_connected_first_then_a_snapshot_of_the_top_20(open_feed, store_prices):
    await store_prices({s: "10" for s in [*TOP_20, "BCH", "LTC"]})
    feed = await open_feed()
    connected = await feed.receive()
    assert connected["type"] == "connected"
    assert connected["connection_id"] and connected["timestamp"].endswith("Z")
    snapshot = await feed.receive()
    assert snapshot["type"] == "crypto_ticker_update"
    assert _symbols(snapshot) == TOP_20
    assert snapshot["seq"] == 1
    assert snapshot["stale"] is False
    assert set(snapshot["data"][0]) == {
        "symbol", "name", "price", "change_24h", "change_percent_24h", "volume_24h", "market_cap", "rank",
        "last_updated", "source", "stale",
    }  # fmt: skip


@pytest.mark.parametrize("path", ["/ws", "/ws/"])
async def test_it_answers_with_and_without_trailing_slash(open_feed, store_prices, path):
    await store_prices({"BTC": "1"})
    feed = await open_feed(path)
    assert feed.accepted
    assert (await feed.receive())["type"] == "connected"


async def test_it_refuses_other_paths(open_feed):
    feed = await open_feed("/websocket")
    assert not feed.accepted


async def test_it_sends_one_frame_per_cycle_with_only_the_changed_symbols_followed(open_feed, store_prices):
    await store_prices({"BTC": "100", "ETH": "10", "BCH": "5"})
    feed = await open_feed()
    await feed.receive_type("connected")
    await feed.receive_type("crypto_ticker_update")

    await store_prices({"BTC": "101", "ETH": "11", "BCH": "6"})  # BCH is rank 21: not followed by default
    update = await feed.receive_type("crypto_ticker_update")
    assert _symbols(update) == ["BTC", "ETH"]
    assert [t["price"] for t in update["data"]] == [101.0, 11.0]
    assert update["seq"] == 2
    assert await feed.nothing()


async def test_it_numbers_ticker_frames_one_by_one(open_feed, store_prices):
    await store_prices({"BTC": "100"})
    feed = await open_feed()
    await feed.receive_type("connected")
    seqs = [(await feed.receive_type("crypto_ticker_update"))["seq"]]
    for price in ("101", "102", "103"):
        await store_prices({"BTC": price})
        seqs.append((await feed.receive_type("crypto_ticker_update"))["seq"])
    assert seqs == [1, 2, 3, 4]


async def test_it_sends_nothing_for_a_cycle_that_changes_no_followed_symbol(open_feed, store_prices):
    await store_prices({"BTC": "100", "FET": "1"})
    feed = await open_feed()
    await feed.receive_type("connected")
    await feed.receive_type("crypto_ticker_update")
    await store_prices({"FET": "2"})
    assert await feed.nothing(0.5)


async def test_it_follows_only_subscribed_symbols_and_snapshots_them(open_feed, store_prices):
    await store_prices({"BTC": "100", "ETH": "10", "FET": "1"})
    feed = await open_feed()
    await feed.receive_type("connected")
    await feed.receive_type("crypto_ticker_update")

    await feed.send({"type": "subscribe", "symbols": ["fet", "ETH"]})
    snapshot = await feed.receive_type("crypto_ticker_update")
    assert sorted(_symbols(snapshot)) == ["ETH", "FET"]
    assert snapshot["seq"] == 2

    await store_prices({"BTC": "101", "ETH": "11", "FET": "2"})
    update = await feed.receive_type("crypto_ticker_update")
    assert _symbols(update) == ["ETH", "FET"]
    assert update["seq"] == 3


async def test_it_adds_to_an_existing_subscription(open_feed, store_prices):
    await store_prices({"BTC": "100", "ETH": "10"})
    feed = await open_feed()
    await feed.receive_type("connected")
    await feed.receive_type("crypto_ticker_update")
    await feed.send({"type": "subscribe", "symbols": ["BTC"]})
    await feed.receive_type("crypto_ticker_update")
    await feed.send({"type": "subscribe", "symbols": ["ETH"]})
    assert _symbols(await feed.receive_type("crypto_ticker_update")) == ["ETH"]

    await store_prices({"BTC": "101", "ETH": "11"})
    assert _symbols(await feed.receive_type("crypto_ticker_update")) == ["BTC", "ETH"]


async def test_it_names_unknown_symbols_in_an_error_and_keeps_the_known_ones(open_feed, store_prices):
    await store_prices({"BTC": "100", "ETH": "10"})
    feed = await open_feed()
    await feed.receive_type("connected")
    await feed.receive_type("crypto_ticker_update")

    await feed.send({"type": "subscribe", "symbols": ["ETH", "NOPE", "ZZZ"]})
    error = await feed.receive_type("error")
    assert error["code"] == "unknown_symbols"
    assert error["symbols"] == ["NOPE", "ZZZ"]
    assert _symbols(await feed.receive_type("crypto_ticker_update")) == ["ETH"]

    await store_prices({"BTC": "101", "ETH": "11"})
    assert _symbols(await feed.receive_type("crypto_ticker_update")) == ["ETH"]


async def test_it_keeps_the_top_20_when_a_subscription_names_only_unknown_symbols(open_feed, store_prices):
    await store_prices({"BTC": "100"})
    feed = await open_feed()
    await feed.receive_type("connected")
    await feed.receive_type("crypto_ticker_update")
    await feed.send({"type": "subscribe", "symbols": ["NOPE"]})
    assert (await feed.receive_type("error"))["code"] == "unknown_symbols"
    await store_prices({"BTC": "101"})
    assert _symbols(await feed.receive_type("crypto_ticker_update")) == ["BTC"]


async def test_it_stops_sending_unsubscribed_symbols(open_feed, store_prices):
    await store_prices({"BTC": "100", "ETH": "10"})
    feed = await open_feed()
    await feed.receive_type("connected")
    await feed.receive_type("crypto_ticker_update")
    await feed.send({"type": "subscribe", "symbols": ["BTC", "ETH"]})
    await feed.receive_type("crypto_ticker_update")
    await feed.send({"type": "unsubscribe", "symbols": ["BTC"]})

    await store_prices({"BTC": "101", "ETH": "11"})
    assert _symbols(await feed.receive_type("crypto_ticker_update")) == ["ETH"]


async def test_it_unsubscribes_from_the_default_top_20(open_feed, store_prices):
    await store_prices({"BTC": "100", "ETH": "10"})
    feed = await open_feed()
    await feed.receive_type("connected")
    await feed.receive_type("crypto_ticker_update")
    await feed.send({"type": "unsubscribe", "symbols": ["ETH"]})
    await feed.send({"type": "ping"})
    await feed.receive_type("pong")

    await store_prices({"BTC": "101", "ETH": "11"})
    assert _symbols(await feed.receive_type("crypto_ticker_update")) == ["BTC"]


async def test_it_answers_ping_with_pong_and_accepts_pong(open_feed, store_prices):
    await store_prices({"BTC": "100"})
    feed = await open_feed()
    await feed.receive_type("connected")
    await feed.receive_type("crypto_ticker_update")
    await feed.send({"type": "pong"})
    await feed.send({"type": "ping"})
    pong = await feed.receive()
    assert pong["type"] == "pong"
    assert pong["timestamp"].endswith("Z")
    assert await feed.nothing()


async def test_it_pings_every_ws_ping_seconds(open_feed, store_prices, settings):
    settings.WS_PING_SECONDS = 1
    await store_prices({"BTC": "100"})
    feed = await open_feed()
    await feed.receive_type("connected")
    await feed.receive_type("crypto_ticker_update")
    ping = await feed.receive(timeout=2.5)
    assert ping["type"] == "ping"
    assert ping["timestamp"].endswith("Z")


async def test_it_serves_another_quote_currency_with_vs(open_feed, store_prices):
    await store_prices({"BTC": "100"}, quote="usd")
    await store_prices({"BTC": "90"}, quote="eur")
    feed = await open_feed("/ws?vs=EUR")
    await feed.receive_type("connected")
    assert (await feed.receive_type("crypto_ticker_update"))["data"][0]["price"] == 90.0

    await store_prices({"BTC": "101"}, quote="usd")
    await store_prices({"BTC": "91"}, quote="eur")
    assert (await feed.receive_type("crypto_ticker_update"))["data"][0]["price"] == 91.0
    assert await feed.nothing()


async def test_it_refuses_a_quote_currency_it_does_not_serve(open_feed):
    feed = await open_feed("/ws?vs=jpy")
    assert not feed.accepted


async def test_it_sends_an_empty_stale_snapshot_on_a_cold_start(open_feed, transactional_db):
    feed = await open_feed()
    await feed.receive_type("connected")
    snapshot = await feed.receive_type("crypto_ticker_update")
    assert snapshot["data"] == []
    assert snapshot["stale"] is True


def test_it_serves_the_live_page_at_the_root(client, db):
    response = client.get("/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "realtime/live.js" in body
    assert 'id="rows"' in body


async def test_it_tells_open_sockets_when_prices_go_stale_and_when_they_come_back(open_feed, store_prices):
    from asgiref.sync import sync_to_async

    from markets import snapshot
    from markets.models import Ticker
    from markets.services import staleness_announce

    await store_prices({"BTC": "100"})
    feed = await open_feed()
    await feed.receive_type("connected")
    await feed.receive_type("crypto_ticker_update")

    def providers_silent_for_years():
        Ticker.objects.update(fetched_at=Ticker.objects.get(quote="usd").fetched_at.replace(year=2020))
        snapshot.snapshot_build(quote="usd")
        staleness_announce(quote="usd")  # what the ingest runs after every cycle, failed or not

    await sync_to_async(providers_silent_for_years)()
    gone_stale = await feed.receive_type("crypto_ticker_update")
    await store_prices({"BTC": "100"})  # the providers answer again, with the same price: no change to announce
    await sync_to_async(staleness_announce)(quote="usd")
    back = await feed.receive_type("crypto_ticker_update")

    assert gone_stale["stale"] is True and gone_stale["seq"] == 2
    assert [(t["symbol"], t["price"], t["stale"]) for t in gone_stale["data"]] == [("BTC", 100.0, True)]
    assert back["stale"] is False and back["seq"] == 3
    assert [(t["symbol"], t["stale"]) for t in back["data"]] == [("BTC", False)]
    assert await feed.nothing()
