"""Handshake guards and abuse limits: Origin, sockets per IP, bad frames, oversized frames, floods."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.django_db(transaction=True)


async def _ready(open_feed, **kwargs):
    feed = await open_feed(**kwargs)
    assert feed.accepted
    await feed.receive_type("connected")
    await feed.receive_type("crypto_ticker_update")
    return feed


@pytest.mark.parametrize(
    "origin",
    [
        *(None, "https://evil.example.com", "http://127.0.0.1:9999", "https://127.0.0.1:8000", "null", "not a url"),
        *("http://127.0.0.1:8000.evil.com", "http://127.0.0.1:99999", "http://localhost:8000@evil.com"),
    ],
)
async def test_it_refuses_a_foreign_or_missing_origin_at_the_handshake(open_feed, transactional_db, origin):
    feed = await open_feed(origin=origin)
    assert not feed.accepted


async def test_it_accepts_every_configured_origin(open_feed, transactional_db, settings):
    settings.WS_ALLOWED_ORIGINS = ["https://app.example.com"]
    assert (await open_feed(origin="https://app.example.com")).accepted
    assert not (await open_feed(origin="http://127.0.0.1:8000")).accepted


async def test_in_development_it_accepts_the_servers_own_page_on_the_port_it_listens_on(open_feed, transactional_db):
    server = ("127.0.0.1", 8765)  # e.g. PORT=8765 scripts/run; the configured defaults name :8000
    for origin in ("http://127.0.0.1:8765", "http://localhost:8765", "http://[::1]:8765"):
        assert (await open_feed(origin=origin, server=server)).accepted, origin
    for origin in ("http://127.0.0.1:8766", "https://127.0.0.1:8765", "http://evil.example.com:8765", "null"):
        assert not (await open_feed(origin=origin, server=server)).accepted, origin


async def test_in_development_it_accepts_the_address_the_socket_reached(open_feed, transactional_db):
    # HOST=0.0.0.0: a browser on the network opens the page at the machine's address.
    assert (await open_feed(origin="http://192.168.1.20:8765", server=("192.168.1.20", 8765))).accepted
    assert not (await open_feed(origin="http://192.168.1.21:8765", server=("192.168.1.20", 8765))).accepted


async def test_in_production_only_the_configured_origins_are_accepted(open_feed, transactional_db, settings):
    settings.PRODUCTION = True
    settings.WS_ALLOWED_ORIGINS = ["https://app.example.com"]
    assert not (await open_feed(origin="http://127.0.0.1:8765", server=("127.0.0.1", 8765))).accepted
    assert (await open_feed(origin="https://app.example.com", server=("10.0.0.5", 8001))).accepted


@pytest.mark.parametrize(
    ("path", "origin", "reason"),
    [
        (
            "/ws",
            "http://127.0.0.1:9999",
            "Origin 'http://127.0.0.1:9999' is not allowed (allowed: http://127.0.0.1:8000",
        ),
        ("/ws", None, "no Origin header (allowed: http://127.0.0.1:8000"),
        ("/ws?vs=xyz", "http://127.0.0.1:8000", "quote not in MARKET_QUOTES (usd, eur, gbp)"),
        ("/nowhere", "http://127.0.0.1:8000", "no WebSocket endpoint at '/nowhere'"),
    ],
)
async def test_it_logs_each_refused_handshake_with_its_reason(
    open_feed, transactional_db, caplog, path, origin, reason
):
    with caplog.at_level("WARNING", logger="realtime.handshake"):
        assert not (await open_feed(path=path, origin=origin, client=("10.0.0.9", 1))).accepted
    [line] = [r.getMessage() for r in caplog.records if r.name == "realtime.handshake"]
    assert line.startswith("WebSocket handshake from 10.0.0.9 refused: ") and reason in line, line


async def test_it_logs_a_handshake_refused_for_the_per_address_limit(open_feed, transactional_db, settings, caplog):
    settings.WS_MAX_PER_IP = 1
    await _ready(open_feed, client=("10.0.0.7", 1))
    with caplog.at_level("WARNING", logger="realtime.handshake"):
        assert not (await open_feed(client=("10.0.0.7", 2))).accepted
    [line] = [r.getMessage() for r in caplog.records if r.name == "realtime.handshake"]
    assert "10.0.0.7 refused: this address is at WS_MAX_PER_IP=1 open sockets" in line


async def test_it_caps_open_sockets_per_client_ip(open_feed, transactional_db, settings):
    settings.WS_MAX_PER_IP = 2
    first = await _ready(open_feed, client=("10.0.0.7", 1))
    await _ready(open_feed, client=("10.0.0.7", 2))
    assert not (await open_feed(client=("10.0.0.7", 3))).accepted
    assert (await open_feed(client=("10.0.0.8", 1))).accepted  # another address is not affected

    await first.close()
    assert (await open_feed(client=("10.0.0.7", 4))).accepted  # a closed socket frees its slot


async def test_it_counts_the_forwarded_client_behind_a_trusted_proxy(open_feed, transactional_db, settings):
    import ipaddress

    settings.WS_MAX_PER_IP = 1
    settings.TRUSTED_PROXIES = (ipaddress.ip_network("10.0.0.1/32"),)
    proxy = ("10.0.0.1", 1)
    assert (await open_feed(client=proxy, headers=[(b"x-forwarded-for", b"203.0.113.5")])).accepted
    assert (await open_feed(client=proxy, headers=[(b"x-forwarded-for", b"203.0.113.6")])).accepted
    assert not (await open_feed(client=proxy, headers=[(b"x-forwarded-for", b"203.0.113.5")])).accepted


async def test_it_ignores_forwarded_for_from_an_untrusted_peer(open_feed, transactional_db, settings):
    settings.WS_MAX_PER_IP = 1
    settings.TRUSTED_PROXIES = ()
    peer = ("198.51.100.9", 1)
    assert (await open_feed(client=peer, headers=[(b"x-forwarded-for", b"203.0.113.5")])).accepted
    assert not (await open_feed(client=peer, headers=[(b"x-forwarded-for", b"203.0.113.99")])).accepted


BAD_FRAMES = [
    ("{not json", "invalid_json"),
    ("\x00\x00", "invalid_json"),
    ("[" * 100_000 + "]" * 100_000, "invalid_json"),  # nesting deeper than the parser allows
    ('"just a string"', "invalid_frame"),
    ("[]", "invalid_frame"),
    ("{}", "invalid_frame"),
    ('{"type": 7}', "invalid_frame"),
    ('{"type": "launch_rockets"}', "unknown_type"),
    ('{"type": "subscribe"}', "invalid_frame"),
    ('{"type": "subscribe", "symbols": "BTC"}', "invalid_frame"),
    ('{"type": "subscribe", "symbols": []}', "invalid_frame"),
    ('{"type": "subscribe", "symbols": [1, 2]}', "invalid_frame"),
    ('{"type": "subscribe", "symbols": ["B\\u0000TC"]}', "invalid_frame"),
    # Longer than any catalogue symbol, or a non-ASCII letter that upper-cases to one (Kelvin sign -> K).
    ('{"type": "subscribe", "symbols": ["' + "B" * 16 + '"]}', "invalid_frame"),
    ('{"type": "subscribe", "symbols": ["\u212a"]}', "invalid_frame"),
    ('{"type": "subscribe", "symbols": [' + ",".join(['"BTC"'] * 101) + "]}", "invalid_frame"),
    ('{"type": "unsubscribe", "symbols": {"BTC": 1}}', "invalid_frame"),
    ('{"type": "authenticate"}', "invalid_frame"),
    ('{"type": "authenticate", "token": 12345}', "invalid_frame"),
    ('{"type": "authenticate", "token": ""}', "invalid_frame"),
    ('{"type": "authenticate", "token": "' + "a" * 5000 + '"}', "invalid_frame"),
]


async def test_it_answers_each_bad_frame_with_an_error_and_stays_open(open_feed, store_prices, settings):
    settings.WS_MAX_FRAME_BYTES = 300_000
    settings.WS_MAX_FRAMES_PER_SECOND = 1000
    await store_prices({"BTC": "1"})
    feed = await _ready(open_feed)
    for frame, code in BAD_FRAMES:
        await feed.send(frame)
        error = await feed.receive_type("error")
        assert (error["code"], bool(error["detail"])) == (code, True), frame[:60]
        await feed.send({"type": "ping"})
        assert (await feed.receive_type("pong"))["type"] == "pong"


async def test_it_answers_a_binary_frame_with_an_error(open_feed, store_prices):
    await store_prices({"BTC": "1"})
    feed = await _ready(open_feed)
    await feed.communicator.send_to(bytes_data=b'{"type": "ping"}')
    assert (await feed.receive_type("error"))["code"] == "unsupported_frame"


async def test_it_ignores_unknown_fields(open_feed, store_prices):
    await store_prices({"BTC": "1"})
    feed = await _ready(open_feed)
    await feed.send({"type": "ping", "extra": {"nested": [1, 2]}})
    assert (await feed.receive_type("pong"))["type"] == "pong"


async def test_it_closes_with_1009_on_an_oversized_frame(open_feed, store_prices, settings):
    await store_prices({"BTC": "1"})
    feed = await _ready(open_feed)
    await feed.send(json.dumps({"type": "ping", "pad": "x" * settings.WS_MAX_FRAME_BYTES}))
    assert await feed.closed_code() == 1009


async def test_it_measures_frame_size_in_utf8_bytes(open_feed, store_prices, settings):
    await store_prices({"BTC": "1"})
    feed = await _ready(open_feed)
    # Fewer characters than the limit, more bytes: each "€" is three bytes.
    await feed.send('{"type":"ping","pad":"' + "€" * (settings.WS_MAX_FRAME_BYTES // 2) + '"}')
    assert await feed.closed_code() == 1009


async def test_it_closes_with_1008_when_a_client_floods(open_feed, store_prices, settings):
    await store_prices({"BTC": "1"})
    feed = await _ready(open_feed)
    for _ in range(settings.WS_MAX_FRAMES_PER_SECOND + 5):
        await feed.send({"type": "pong"})
    assert await feed.closed_code() == 1008


async def test_it_allows_a_steady_client_under_the_frame_rate(open_feed, store_prices, settings):
    import asyncio

    settings.WS_MAX_FRAMES_PER_SECOND = 10
    await store_prices({"BTC": "1"})
    feed = await _ready(open_feed)
    for _ in range(15):  # 1.5x the limit in total, spread over ~1.9 s
        await feed.send({"type": "ping"})
        await feed.receive_type("pong")
        await asyncio.sleep(0.13)
    await feed.send({"type": "ping"})
    assert (await feed.receive_type("pong"))["type"] == "pong"


async def test_it_survives_its_backends_failing(open_feed, store_prices, monkeypatch):
    """The database or cache failing under a frame costs the client an error frame, never the socket."""
    from django.db import OperationalError

    import realtime.async_selectors

    await store_prices({"BTC": "1"})

    async def unavailable(**kwargs):
        raise OperationalError("the database is unavailable")

    monkeypatch.setattr(realtime.async_selectors, "ticker_snapshot", unavailable)
    monkeypatch.setattr(realtime.async_selectors, "symbols_known", unavailable)
    feed = await open_feed()
    await feed.receive_type("connected")
    snapshot = await feed.receive_type("crypto_ticker_update")
    assert (snapshot["data"], snapshot["stale"], snapshot["seq"]) == ([], True, 1)  # honest, not invented

    await feed.send({"type": "subscribe", "symbols": ["BTC"]})
    assert (await feed.receive_type("error"))["code"] == "unavailable"
    await feed.send({"type": "ping"})
    assert (await feed.receive_type("pong"))["type"] == "pong"
