"""Fixtures for the feed: a WebSocket client on the real ASGI application, and real stored prices."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

ORIGIN = "http://127.0.0.1:8000"


class FeedClient:
    """A WebsocketCommunicator that speaks JSON frames."""

    def __init__(self, communicator: WebsocketCommunicator):
        self.communicator = communicator

    async def send(self, frame) -> None:
        await self.communicator.send_to(text_data=frame if isinstance(frame, str) else json.dumps(frame))

    async def receive(self, timeout: float = 3) -> dict:
        message = await self.communicator.receive_output(timeout)
        if message["type"] == "websocket.close":
            return {"type": "__closed__", "code": message.get("code")}
        return json.loads(message["text"])

    async def receive_type(self, frame_type: str, timeout: float = 3) -> dict:
        """The next frame of `frame_type`, skipping pings."""
        deadline = time.monotonic() + timeout
        while True:
            frame = await self.receive(max(0.01, deadline - time.monotonic()))
            if frame["type"] == frame_type:
                return frame
            if frame["type"] != "ping":
                raise AssertionError(f"expected {frame_type}, got {frame}")

    async def receive_until(self, frame_type: str, timeout: float = 3) -> dict:
        """The next frame of `frame_type`, skipping any others."""
        deadline = time.monotonic() + timeout
        while True:
            frame = await self.receive(max(0.01, deadline - time.monotonic()))
            if frame["type"] == frame_type:
                return frame

    async def closed_code(self, timeout: float = 3) -> int | None:
        deadline = time.monotonic() + timeout
        while True:
            frame = await self.receive(max(0.01, deadline - time.monotonic()))
            if frame["type"] == "__closed__":
                return frame["code"]

    async def nothing(self, timeout: float = 0.3) -> bool:
        return await self.communicator.receive_nothing(timeout)

    async def close(self) -> None:
        await self.communicator.disconnect()


@pytest.fixture(autouse=True)
async def _release_thread_connections():
    """The consumer's ORM calls run in asgiref's shared thread; close its connection after each test."""
    yield
    from channels.db import database_sync_to_async
    from django.db import connections

    await database_sync_to_async(connections.close_all)()


@pytest.fixture
async def open_feed():
    """`await open_feed(path="/ws", origin=ORIGIN, server=None)` -> FeedClient (check `.accepted`).

    `server` is the (host, port) an ASGI server puts in the scope; every client is closed at teardown.
    """
    from coinlink.asgi import application

    clients: list[FeedClient] = []

    async def _open(
        path: str = "/ws", origin: str | None = ORIGIN, headers=(), client=("127.0.0.1", 50000), server=None
    ):
        all_headers = [(b"host", b"127.0.0.1:8000"), *headers]
        if origin is not None:
            all_headers.append((b"origin", origin.encode()))
        communicator = WebsocketCommunicator(application, path, headers=all_headers)
        communicator.scope["client"] = client
        if server is not None:  # the address the server listens on, as ASGI servers report it
            communicator.scope["server"] = server
        connected, code = await communicator.connect(timeout=5)
        feed = FeedClient(communicator)
        feed.accepted, feed.refused_code = connected, code
        clients.append(feed)
        return feed

    yield _open
    for feed in clients:
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await feed.close()


@pytest.fixture
def store_prices(transactional_db):
    """`await store_prices({"BTC": "65000.5", ...})`: a real ingest write (snapshot + tickers_changed)."""
    from markets.catalogue import catalogue_load
    from markets.providers.validate import TickerRow
    from markets.services import tickers_store

    catalogue_load()

    def _store(prices: dict[str, str], quote: str = "usd", observed_at: float | None = None) -> float:
        observed = observed_at or time.time()
        now = datetime.now(UTC)
        rows = {
            s: TickerRow(
                symbol=s,
                price=Decimal(p),
                change_24h=Decimal("1.5"),
                change_percent_24h=Decimal("0.5"),
                volume_24h=Decimal("1000000"),
                market_cap=Decimal("5000000000"),
                bid=None,
                ask=None,
                last_updated=now,
                source="coingecko",
            )
            for s, p in prices.items()
        }
        tickers_store(quote=quote, rows=rows, observed_at=observed)
        return observed

    async def _astore(prices: dict[str, str], quote: str = "usd", observed_at: float | None = None) -> float:
        return await sync_to_async(_store)(prices, quote, observed_at)

    return _astore
