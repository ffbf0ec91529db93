"""The Coinbase Exchange feed client: subscribe, read, reconnect with backoff, and a watchdog for silence.

One session: connect, subscribe to `ticker` and `heartbeat` for every product at once, then read.
Heartbeats come every second per product, so a connection that delivers nothing for
MARKET_STREAM_IDLE_SECONDS is dead even if TCP says otherwise: the watchdog ends it. Any end of a
session is followed by a wait from `Backoff`, and the next session subscribes again.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable

import websockets

from coinlink import metrics
from markets.stream.coalescer import Coalescer
from markets.stream.messages import Dropped, FeedError, Heartbeat, Subscribed, Trade, message_parse, subscribe_message
from markets.stream.status import StreamState
from markets.vocabulary import SYMBOL_MAX_LENGTH

logger = logging.getLogger("markets.stream")

MAX_MESSAGE_BYTES = 1 << 20  # a subscriptions reply for a few hundred products is a few kB
HEARTBEAT_GAP_SECONDS = 1.5  # heartbeats are 1 s apart; a longer interval means one was lost
_PRODUCT_ID = re.compile(rf"\b[A-Z0-9]{{1,{SYMBOL_MAX_LENGTH}}}-[A-Z]{{3,4}}\b")


class Backoff:
    """Exponential backoff with full jitter (uniform in [0, ceiling]) while the ceiling grows.

    Once the ceiling reaches `cap` the feed is considered unreachable (offline): attempts are then
    between 0.9 and 1.0 x cap apart, so it settles at about one a minute with the default cap (full
    jitter at the cap would average two), still spread so replicas do not retry in step.
    """

    def __init__(self, *, cap: float, base: float = 0.5, rng: Callable[[], float] = random.random):
        self.cap, self.base, self.rng = cap, min(base, cap), rng
        self.attempts = 0

    def next(self) -> float:
        ceiling = min(self.cap, self.base * 2 ** min(self.attempts, 32))
        self.attempts += 1
        if ceiling >= self.cap:
            return self.cap * (0.9 + 0.1 * self.rng())
        return ceiling * self.rng()

    def reset(self) -> None:
        self.attempts = 0


class Stalled(Exception):
    """Nothing arrived for the idle limit."""


class Closed(Exception):
    """The feed ended the connection."""


class FeedClient:
    def __init__(
        self,
        *,
        url: str,
        idle_seconds: float,
        backoff: Backoff,
        state: StreamState,
        coalescer: Coalescer,
        products_load: Callable[[], Awaitable[dict[str, tuple[str, str]]]],
    ):
        self.url, self.idle_seconds, self.backoff = url, idle_seconds, backoff
        self.state, self.coalescer, self.products_load = state, coalescer, products_load
        self.products: dict[str, tuple[str, str]] = {}  # the products asked for in this session
        self.rejected: set[str] = set()
        self._heartbeats: dict[str, Heartbeat] = {}
        self._errors_logged: set[tuple[str, str]] = set()

    async def run(self) -> None:
        """Sessions for as long as the task runs (cancel it to stop)."""
        while True:
            metrics.STREAM_RECONNECTS.inc()
            try:
                await self._session()
            except Stalled:
                line = "market stream stalled: nothing for %s s; reconnecting"
                self.state.change("stalled", line, self.idle_seconds, level=logging.WARNING)
            except Exception as exc:  # any cause: the next session is the remedy
                self.state.change(
                    "down",
                    "market stream down: %s; retrying with backoff, at most %s s apart",
                    _reason(exc),
                    self.backoff.cap,
                    level=logging.WARNING,
                )
            await asyncio.sleep(self.backoff.next())

    async def _session(self) -> None:
        products = await self.products_load()
        self.products = {p: v for p, v in products.items() if p not in self.rejected}
        if not self.products:
            raise Closed("no active asset has a Coinbase product")
        async with websockets.connect(self.url, open_timeout=10, close_timeout=2, max_size=MAX_MESSAGE_BYTES) as ws:
            await ws.send(subscribe_message(list(self.products)))
            try:
                await self._read(ws)
            except TimeoutError:
                raise Stalled from None
        raise Closed(f"closed by the feed ({ws.close_code})")

    async def _read(self, ws) -> None:
        """Read until the feed closes; TimeoutError after `idle_seconds` (up to a quarter more) of silence.

        The watchdog is moved at most every quarter of the idle limit, not at every message: at
        hundreds of messages a second, rescheduling a timer each time was a visible share of the CPU.
        """
        loop = asyncio.get_running_loop()
        slack = self.idle_seconds / 4
        moved = loop.time()
        async with asyncio.timeout_at(moved + self.idle_seconds + slack) as watchdog:
            async for raw in ws:
                self.receive(raw)
                now = loop.time()
                if now - moved >= slack:
                    watchdog.reschedule(now + self.idle_seconds + slack)
                    moved = now

    def receive(self, raw: str | bytes) -> None:
        """Handle one feed message."""
        now = time.time()
        self.state.last_message_at = now
        try:
            message = message_parse(raw, products=self.products)
        except Dropped as exc:
            metrics.STREAM_DROPPED.labels(reason=exc.reason).inc()
            logger.debug("market stream dropped a message: %s", exc)
            return
        if isinstance(message, Trade):
            metrics.STREAM_MESSAGES.labels(type="ticker").inc()
            if not self.coalescer.add(message, at=now):
                metrics.STREAM_DROPPED.labels(reason="out_of_order").inc()
        elif isinstance(message, Heartbeat):
            metrics.STREAM_MESSAGES.labels(type="heartbeat").inc()
            self._heartbeat(message)
        elif isinstance(message, Subscribed):
            metrics.STREAM_MESSAGES.labels(type="subscriptions").inc()
            self._subscribed(message)
        elif isinstance(message, FeedError):
            metrics.STREAM_MESSAGES.labels(type="error").inc()
            self._error(message)
        else:
            metrics.STREAM_MESSAGES.labels(type="other").inc()

    def _heartbeat(self, beat: Heartbeat) -> None:
        last = self._heartbeats.get(beat.product_id)
        self._heartbeats[beat.product_id] = beat
        if last is None:
            return
        if beat.sequence <= last.sequence or (beat.time - last.time).total_seconds() > HEARTBEAT_GAP_SECONDS:
            metrics.STREAM_SEQUENCE_GAPS.inc()

    def _subscribed(self, message: Subscribed) -> None:
        missing = set(self.products) - message.ticker_products
        # Only a partial reply names products Coinbase refused; a reply carrying none of ours is
        # more likely a change of its format, and skipping everything would end the stream for good.
        if missing and len(missing) < len(self.products):
            self._reject(missing, "not in Coinbase's subscriptions reply")
        self.state.products = len(set(self.products) & message.ticker_products)
        self.backoff.reset()
        self.state.change("connected", "market stream connected to %s: %d products", self.url, self.state.products)

    def _error(self, error: FeedError) -> None:
        key = (error.message, error.reason)
        if key not in self._errors_logged and len(self._errors_logged) < 100:
            self._errors_logged.add(key)
            logger.warning("Coinbase feed error: %s (reason: %s)", error.message or "-", error.reason or "-")
        named = set(_PRODUCT_ID.findall(error.reason)) & set(self.products)
        if named:
            self._reject(named, f"Coinbase refused it: {error.reason}")

    def _reject(self, products: set[str], why: str) -> None:
        """Skip these products from the next session on; each is logged once."""
        new = products - self.rejected
        self.rejected |= new
        if new:
            logger.warning("market stream skips %s: %s", ", ".join(sorted(new)), why)


def _reason(exc: Exception) -> str:
    text = str(exc)[:200]
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__
