"""Feed messages are parsed from the recorded frames' shapes and validated like the REST answers."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from markets.stream.client import Backoff
from markets.stream.messages import Dropped, FeedError, Heartbeat, Subscribed, Trade, message_parse
from tests.markets.conftest import recorded

PRODUCTS = {"BAND-GBP": ("BAND", "gbp"), "BTC-USD": ("BTC", "usd")}


def test_it_parses_a_recorded_ticker_frame():
    frame = recorded("coinbase_ws_ticker.json")[0]
    trade = message_parse(json.dumps(frame), products=PRODUCTS)
    assert isinstance(trade, Trade)
    assert (trade.product_id, trade.price, trade.open_24h) == ("BAND-GBP", Decimal("14.7775"), Decimal("14.6647"))
    assert (trade.bid, trade.ask, trade.sequence, trade.trade_id) == (
        Decimal("14.7550"), Decimal("14.8060"), 333938798, 881613,
    )  # fmt: skip
    assert trade.time.isoformat() == "2021-04-17T16:43:30.244075+00:00"


def test_it_parses_recorded_heartbeat_and_subscriptions_frames():
    beat = message_parse(json.dumps(recorded("coinbase_ws_heartbeat.json")[0]), products=PRODUCTS)
    assert isinstance(beat, Heartbeat) and beat.sequence == 14011426656
    ack = message_parse(json.dumps(recorded("coinbase_ws_subscriptions.json")[1]), products=PRODUCTS)
    assert isinstance(ack, Subscribed) and "BAND-GBP" in ack.ticker_products and "DASH-BTC" in ack.ticker_products


def test_it_reads_an_error_frame_and_ignores_types_it_does_not_use():
    error = message_parse('{"type":"error","message":"Failed to subscribe","reason":"X-USD is not a valid product"}',
                          products=PRODUCTS)  # fmt: skip
    assert error == FeedError("Failed to subscribe", "X-USD is not a valid product")
    assert message_parse('{"type":"l2update","product_id":"BTC-USD"}', products=PRODUCTS) is None


@pytest.mark.parametrize(
    "raw",
    ["", "null", "[]", "\x00", "{" * 100_000, '{"type":"ticker"}', '{"type":"heartbeat","product_id":"BTC-USD"}'],
)
def test_malformed_frames_are_dropped_never_raised_past_the_parser(raw):
    with pytest.raises(Dropped):
        message_parse(raw, products=PRODUCTS)


def test_backoff_is_full_jitter_below_the_cap_and_settles_near_the_cap_offline():
    lows = Backoff(cap=60, rng=lambda: 0.0)
    assert [lows.next() for _ in range(10)] == [0.0] * 7 + [54.0] * 3  # ceiling 0.5, 1, ... 32, then 60
    highs = Backoff(cap=60, rng=lambda: 1.0)
    assert [highs.next() for _ in range(9)] == [0.5, 1, 2, 4, 8, 16, 32, 60, 60]
    highs.reset()
    assert highs.next() == 0.5
