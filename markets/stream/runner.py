"""The streamer: feed client, lease and flush loop on one asyncio loop, database work on one thread.

`manage.py markets_stream` runs it as its own process (production); `start_embedded_stream()` runs it
on a daemon thread of `manage.py serve` in the embedded default. Every replica reads the feed (a
hot standby); only the lease holder publishes flushes and writes the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

from django.conf import settings
from django.db import close_old_connections, connections

from coinlink import metrics
from markets.stream.client import Backoff, FeedClient
from markets.stream.coalescer import Coalescer, Received
from markets.stream.lease import Lease
from markets.stream.publish import stream_price, stream_prices_persist, stream_prices_publish, stream_products
from markets.stream.status import StreamState, stream_status_put

logger = logging.getLogger("markets.stream")


def _db_call(function, kwargs: dict):
    close_old_connections()  # as Celery does per task: a connection broken meanwhile is replaced
    try:
        return function(**kwargs)
    finally:
        close_old_connections()


class Streamer:
    def __init__(self, *, url: str | None = None, health_file: Path | None = None):
        self.flush_seconds = settings.MARKET_STREAM_FLUSH_MS / 1000
        self.lease_seconds = settings.MARKET_STREAM_LEASE_SECONDS
        self.health_file = health_file
        self.state = StreamState()
        self.coalescer = Coalescer()
        self.client = FeedClient(
            url=url or settings.COINBASE_STREAM_URL,
            idle_seconds=settings.MARKET_STREAM_IDLE_SECONDS,
            backoff=Backoff(cap=settings.MARKET_STREAM_BACKOFF_MAX_SECONDS),
            state=self.state,
            coalescer=self.coalescer,
            products_load=partial(self._sync, stream_products),
        )
        self.lease = Lease(ttl=self.lease_seconds)
        self._leader_until = 0.0
        self._unwritten: dict[str, dict] = {}  # product -> its newest published price since the last write
        self._written_at = time.monotonic()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="markets-stream-db")
        self._failing = False

    @property
    def leading(self) -> bool:
        return time.monotonic() < self._leader_until

    async def run(self, stop: asyncio.Event) -> None:
        tasks = [asyncio.create_task(c) for c in (self.client.run(), self._lease_loop(), self._flush_loop())]
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.lease.release()
            await self._sync(connections.close_all)  # the worker thread's connection ends with it
            self._executor.shutdown(wait=True)
            metrics.STREAM_CONNECTED.set(0)
            metrics.STREAM_LEADER.set(0)
            logger.info("market stream stopped")

    async def _sync(self, function, **kwargs):
        return await asyncio.get_running_loop().run_in_executor(self._executor, _db_call, function, kwargs)

    async def _lease_loop(self) -> None:
        while True:
            asked = time.monotonic()
            if await self.lease.hold():
                # Stop publishing well before the key can expire in Redis, even if this loop stalls.
                self._leader_until = asked + self.lease_seconds * 0.8
            self.state.leadership(self.leading)
            await asyncio.sleep(self.lease_seconds / 3)

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.flush_seconds)
            if not self.leading:
                self._stand_by()
                continue
            try:
                await self._flush(self.coalescer.take())
                await self._sync(stream_status_put, state=self.state, ttl=max(5.0, 3 * self.flush_seconds))
                self._publishing(ok=True)
            except Exception as exc:  # the database or the cache is down: the next flush tries again
                self._publishing(ok=False, error=exc)
            self._touch()

    def _stand_by(self) -> None:
        """A standby keeps the newest trade per product, to publish at once if it takes over; the
        candle bars are the leader's to write, so it keeps only the current poll period's."""
        if time.monotonic() - self._written_at >= settings.MARKET_POLL_SECONDS:
            self.coalescer.take_bars()
            self._written_at = time.monotonic()
        self._unwritten.clear()
        self._touch()

    async def _flush(self, batch: dict[str, Received]) -> None:
        by_quote: dict[str, dict[str, dict]] = defaultdict(dict)
        for product, received in batch.items():
            if product not in self.client.products:
                continue
            symbol, quote = self.client.products[product]
            price = stream_price(received.trade, received=received.at)
            by_quote[quote][symbol] = self._unwritten[product] = price
        for quote, prices in by_quote.items():
            observed = min(p["observed"] for p in prices.values())
            await self._sync(stream_prices_publish, quote=quote, prices=prices, observed_at=observed)
            metrics.STREAM_FLUSHES.labels(quote=quote).inc()
            published = time.time()
            for price in prices.values():
                metrics.STREAM_LAG.observe(max(0.0, published - price["last_updated"].timestamp()))
        if time.monotonic() - self._written_at >= settings.MARKET_POLL_SECONDS:
            await self._write()

    async def _write(self) -> None:
        """The rows and candles: at most once per poll period, whatever the tick rate."""
        prices: dict[str, dict[str, dict]] = defaultdict(dict)
        bars: dict[str, dict] = defaultdict(dict)
        for product, price in self._unwritten.items():
            symbol, quote = self.client.products.get(product, (None, None))
            if symbol and quote:
                prices[quote][symbol] = price
        for (product, bucket), bar in self.coalescer.take_bars().items():
            symbol, quote = self.client.products.get(product, (None, None))
            if symbol and quote:
                bars[quote][(symbol, bucket)] = bar
        self._unwritten, self._written_at = {}, time.monotonic()
        for quote in prices.keys() | bars.keys():
            await self._sync(stream_prices_persist, quote=quote, prices=prices[quote], bars=bars[quote])

    def _publishing(self, *, ok: bool, error: Exception | None = None) -> None:
        if ok == (not self._failing):
            return
        self._failing = not ok
        if ok:
            logger.info("market stream publishes again")
        else:
            logger.error("market stream cannot publish: %s: %s", error.__class__.__name__, str(error)[:300])

    def _touch(self) -> None:
        if self.health_file is not None:
            with contextlib.suppress(OSError):
                self.health_file.touch()


async def stream_main(*, url: str | None = None, health_file: Path | None = None, stop: asyncio.Event) -> None:
    await Streamer(url=url, health_file=health_file).run(stop)


class EmbeddedStream(threading.Thread):
    """The streamer on a daemon thread with its own event loop (the embedded default)."""

    def __init__(self):
        super().__init__(name="markets-stream", daemon=True)
        self.loop = asyncio.new_event_loop()
        self.stop_event: asyncio.Event | None = None

    def run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.stop_event = asyncio.Event()
        self.loop.run_until_complete(stream_main(stop=self.stop_event))

    def stop(self) -> None:
        if self.stop_event is not None:
            self.loop.call_soon_threadsafe(self.stop_event.set)


def start_embedded_stream() -> EmbeddedStream | None:
    """Live ticks inside this server process when MARKET_STREAM_ENABLED and there is no Redis."""
    if not settings.MARKET_STREAM_ENABLED:
        logger.info("MARKET_STREAM_ENABLED is false: prices move with the poll only")
        return None
    if not settings.EMBEDDED:
        logger.info("REDIS_URL is set: live ticks come from `manage.py markets_stream`, not from this server")
        return None
    stream = EmbeddedStream()
    stream.start()
    logger.info("market stream started in this process (%s)", settings.COINBASE_STREAM_URL)
    return stream
