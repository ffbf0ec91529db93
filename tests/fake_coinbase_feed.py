"""A fake Coinbase Exchange market-data feed on loopback, for tests and benchmarks (never the real one).

It speaks the documented protocol: the client sends `{"type": "subscribe", "product_ids": [...],
"channels": [...]}`; an unknown product gets `error` ("Failed to subscribe", "<id> is not a valid
product") and the connection is closed, as Coinbase does; otherwise a `subscriptions` ack (one frame
listing every channel, as recorded), then a `heartbeat` per product every second and a `ticker` for
each trade. Every frame is a copy of a recorded one (tests/fixtures/upstream/coinbase_ws_*.json)
with the product, price, time, sequence and trade id replaced.

Faults on demand: `drop()` closes every connection, `silence()` keeps TCP open but sends nothing,
`send_raw()` sends garbage, `send_error()` an `error` frame, `refuse()` stops accepting connections.

In-process (tests): `with FakeCoinbaseFeed(products=["BTC-USD"]) as feed: feed.tick("BTC-USD", "65000")`.
As a process (benchmarks): `python -m tests.fake_coinbase_feed --port 18098 --rate 500 --products BTC-USD,...`.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import itertools
import json
import random
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import websockets

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "upstream"


def _recorded(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())[0]


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class FakeCoinbaseFeed:
    def __init__(self, *, products: Iterable[str], heartbeat_seconds: float = 1.0, port: int = 0):
        self.products = set(products)
        self.heartbeat_seconds = heartbeat_seconds
        self.port = port
        self.subscriptions: list[dict] = []  # every subscribe request received
        self.connections = 0  # connections accepted
        self.silent = False
        self._ticker, self._heartbeat = _recorded("coinbase_ws_ticker.json"), _recorded("coinbase_ws_heartbeat.json")
        self._clients: dict = {}  # websocket -> products it subscribed
        self._sequence = itertools.count(int(self._ticker["sequence"]))
        self._trade_ids = itertools.count(int(self._ticker["trade_id"]))
        self._last_trade: dict[str, int] = {}
        self._server = None
        self._beats: asyncio.Task | None = None
        self._streaming = None  # the future of stream(), if running
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-coinbase-feed", daemon=True)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    # --- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> FakeCoinbaseFeed:
        self._thread.start()
        self._call(self._listen())
        return self

    def __exit__(self, *exc) -> None:
        if self._streaming is not None:
            self._streaming.cancel()
        self._call(self._shutdown())
        self._call(self._stop_beats())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)

    async def _listen(self) -> None:
        self._server = await websockets.serve(self._serve, "127.0.0.1", self.port, compression=None)
        self.port = self._server.sockets[0].getsockname()[1]
        if self._beats is None:
            self._beats = self._loop.create_task(self._heartbeats())

    async def _stop_beats(self) -> None:
        if self._beats is not None:
            self._beats.cancel()
            await asyncio.gather(self._beats, return_exceptions=True)

    async def _shutdown(self) -> None:
        await self._drop()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    # --- the protocol --------------------------------------------------------------------------
    async def _serve(self, ws) -> None:
        self.connections += 1
        try:
            request = json.loads(await ws.recv())
            self.subscriptions.append(request)
            wanted = [p for p in request.get("product_ids", []) if isinstance(p, str)]
            unknown = [p for p in wanted if p not in self.products]
            if request.get("type") != "subscribe" or unknown:
                reason = f"{unknown[0]} is not a valid product" if unknown else "type is required"
                await ws.send(json.dumps({"type": "error", "message": "Failed to subscribe", "reason": reason}))
                return
            channels = [c if isinstance(c, str) else c.get("name") for c in request.get("channels", [])]
            ack = {"type": "subscriptions", "channels": [{"name": c, "product_ids": wanted} for c in channels]}
            await ws.send(json.dumps(ack))
            self._clients[ws] = set(wanted)
            await ws.wait_closed()
        except (websockets.ConnectionClosed, ValueError):
            pass
        finally:
            self._clients.pop(ws, None)

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            if self.silent:
                continue
            now = _iso(time.time())
            for ws, products in list(self._clients.items()):
                for product in products:
                    frame = {
                        **self._heartbeat,
                        "product_id": product,
                        "sequence": next(self._sequence),
                        "last_trade_id": self._last_trade.get(product, 0),
                        "time": now,
                    }
                    await self._send(ws, json.dumps(frame))

    async def _send(self, ws, text: str) -> None:
        try:
            await ws.send(text)
        except websockets.ConnectionClosed:
            self._clients.pop(ws, None)

    async def _broadcast(self, product: str | None, text: str) -> int:
        targets = [ws for ws, products in self._clients.items() if product is None or product in products]
        for ws in targets:
            await self._send(ws, text)
        return len(targets)

    # --- what tests and benchmarks drive -------------------------------------------------------
    def ticker_frame(self, product: str, price, *, open_24h=None, at: float | None = None) -> dict:
        """A recorded ticker frame re-stamped for `product` at `price` (time: now)."""
        trade_id = next(self._trade_ids)
        self._last_trade[product] = trade_id
        frame = copy.copy(self._ticker)
        price_text = str(price)
        frame.update(
            product_id=product,
            price=price_text,
            open_24h=str(open_24h) if open_24h is not None else str(Decimal(price_text) * Decimal("0.98")),
            best_bid=price_text,
            best_ask=price_text,
            time=_iso(time.time() if at is None else at),
            sequence=next(self._sequence),
            trade_id=trade_id,
        )
        return frame

    def tick(self, product: str, price, *, open_24h=None) -> dict:
        """Send one trade of `product` to every subscriber; returns the frame."""
        frame = self.ticker_frame(product, price, open_24h=open_24h)
        self._call(self._broadcast(product, json.dumps(frame)))
        return frame

    def send_raw(self, text: str) -> int:
        """Send `text` as it is (garbage, a hand-made frame) to every subscriber."""
        return self._call(self._broadcast(None, text))

    def send_error(self, message: str, reason: str) -> int:
        return self.send_raw(json.dumps({"type": "error", "message": message, "reason": reason}))

    def drop(self) -> None:
        """Close every connection (the client sees the feed go away)."""
        self._call(self._drop())

    async def _drop(self) -> None:
        for ws in list(self._clients):
            ws.transport.abort()
        self._clients.clear()

    def silence(self, silent: bool = True) -> None:
        """Stop (or resume) sending anything, heartbeats included; connections stay open."""
        self.silent = silent

    def refuse(self) -> None:
        """Stop listening: new connections are refused (existing ones are dropped)."""
        self._call(self._shutdown())

    def accept(self) -> None:
        """Listen again on the same port."""
        self._call(self._listen())

    def subscribed(self) -> int:
        """Connections that have subscribed and are open."""
        return len(self._clients)

    async def _stream(self, rate: float, products: list[str]) -> None:
        """`rate` trades per second, spread over `products`, a random walk around 100."""
        prices = dict.fromkeys(products, 100.0)
        interval = 1.0 / rate
        next_at = time.monotonic()
        for product in itertools.cycle(products):
            prices[product] *= 1 + random.uniform(-0.001, 0.001)  # synthetic prices, not market data
            frame = self.ticker_frame(product, f"{prices[product]:.4f}")
            await self._broadcast(product, json.dumps(frame))
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    def stream(self, rate: float, products: list[str]) -> None:
        """Send `rate` trades a second (spread over `products`) until the feed stops."""
        self._streaming = asyncio.run_coroutine_threadsafe(self._stream(rate, products), self._loop)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=18098)
    parser.add_argument("--products", required=True, help="comma list of products, e.g. BTC-USD,ETH-USD")
    parser.add_argument("--rate", type=float, default=0.0, help="trades per second over all products")
    args = parser.parse_args()
    products = [p for p in args.products.split(",") if p]
    with FakeCoinbaseFeed(products=products, port=args.port) as feed:
        if args.rate:
            feed.stream(args.rate, products)
        print(f"fake Coinbase feed on {feed.url}", flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
