"""One socket's outgoing frames: a small bounded queue plus ONE coalesced ticker update.

A slow client never delays the others: the hub only hands frames to outboxes (no await), and each
socket's writer coroutine awaits its own `send`. When a ticker update arrives while the previous one
is still waiting to be written, the two merge (newest value per symbol wins) and the superseded
frame is counted in `coinlink_ws_frames_dropped_total`; `seq` is assigned at write time, so a client
never sees a gap, only fewer, fuller frames.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from bisect import bisect_left
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from coinlink import metrics
from realtime import events

# Control frames and notifications waiting for a slow socket; past this the client is hopelessly
# behind and is closed (1013, try again later) rather than buffered without bound.
MAX_QUEUED_FRAMES = 64
# A close requested while the writer is stuck in a send (peer not reading) is forced after this.
FORCE_CLOSE_AFTER_SECONDS = 2.0

_SENT_TICKER = metrics.WS_FRAMES_SENT.labels("crypto_ticker_update")
_DROPPED_TICKER = metrics.WS_FRAMES_DROPPED.labels("crypto_ticker_update")
TALLY_FLUSH_SECONDS = 0.25


class _Tally:
    """Ticker frames written and their feed latency, folded into Prometheus a few times a second.

    At 10,000 sockets a locked `Counter.inc` plus `Histogram.observe` per frame costs about as much as
    the write itself; here a frame costs one bisect, and the flush adds whole buckets at once.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.bounds = list(metrics.FEED_LATENCY._upper_bounds)
        self._reset()

    def _reset(self) -> None:
        self.sent, self.total, self.counts = 0, 0.0, [0] * len(self.bounds)
        self.scheduled = False

    def frame(self, latency: float | None) -> None:
        self.sent += 1
        if latency is not None:
            self.counts[bisect_left(self.bounds, latency)] += 1
            self.total += latency
        if not self.scheduled:
            self.scheduled = True
            self.loop.call_later(TALLY_FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        sent, total, counts = self.sent, self.total, self.counts
        self._reset()
        if sent:
            _SENT_TICKER.inc(sent)
        for bucket, count in zip(metrics.FEED_LATENCY._buckets, counts, strict=True):
            if count:
                bucket.inc(count)
        if total:
            metrics.FEED_LATENCY._sum.inc(total)


_tallies: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Tally] = weakref.WeakKeyDictionary()


def _tally() -> _Tally:
    loop = asyncio.get_running_loop()
    tally = _tallies.get(loop)
    if tally is None:
        tally = _tallies[loop] = _Tally(loop)
    return tally


@dataclass(slots=True)
class TickerBatch:
    """The tickers of one (or several coalesced) update cycles for one symbol set; encoded lazily, once."""

    tickers: dict[str, events.Ticker]
    timestamp: str
    stale: bool
    observed_at: float | None = None  # None for snapshots: not a fresh ingest, no latency sample
    prefix: str | None = field(default=None)

    def text(self, seq: int) -> str:
        if self.prefix is None:
            self.prefix = events.ticker_update_prefix(
                data=list(self.tickers.values()), timestamp=self.timestamp, stale=self.stale
            )
        return events.ticker_update_text(self.prefix, seq)

    def merged(self, newer: TickerBatch) -> TickerBatch:
        tickers = {**self.tickers, **newer.tickers}
        observed = [t for t in (self.observed_at, newer.observed_at) if t is not None]
        return TickerBatch(
            tickers=tickers,
            timestamp=newer.timestamp,
            stale=any(t.get("stale") for t in tickers.values()),
            observed_at=min(observed) if observed else None,
        )


class Outbox:
    """Frames for one socket, written in order by `run()`; every method but `run` is non-blocking."""

    def __init__(self, send: Callable[[dict], Awaitable[None]]):
        self._send = send
        self._queue: deque[tuple[str, str]] = deque()
        self.pending: TickerBatch | None = None
        self.holding = True  # until the connect snapshot is in, updates only accumulate
        self.seq = 0
        self.close_code: int | None = None
        self._waiter: asyncio.Future | None = None
        self._sending = False
        self._closer: asyncio.Future | None = None

    # -- producers (hub, consumer) --------------------------------------------------------------
    def push(self, frame_type: str, text: str) -> None:
        if self.close_code is not None:
            return
        if len(self._queue) >= MAX_QUEUED_FRAMES:
            metrics.WS_FRAMES_DROPPED.labels(frame_type).inc()
            self.close(1013, reason="slow_client")
            return
        self._queue.append((frame_type, text))
        self._wake()

    def push_frame(self, frame: events.Frame) -> None:
        self.push(frame["type"], events.frame_encode(frame))

    def has_queued(self, frame_type: str) -> bool:
        return any(kind == frame_type for kind, _ in self._queue)

    def offer_ticker(self, batch: TickerBatch) -> None:
        """A new update cycle: replaces nothing already written, merges into what is still waiting."""
        if self.close_code is not None:
            return
        if self.pending is None:
            self.pending = batch
        else:
            if not self.holding:
                _DROPPED_TICKER.inc()
            self.pending = self.pending.merged(batch)
        self._wake()

    def offer_snapshot(self, batch: TickerBatch) -> None:
        """A snapshot read from the store: updates that arrived meanwhile are newer and win."""
        self.pending = batch if self.pending is None else batch.merged(self.pending)
        self.holding = False
        self._wake()

    def release(self) -> None:
        """Stop holding updates back without a snapshot (the snapshot read failed)."""
        self.holding = False
        self._wake()

    def close(self, code: int, *, reason: str = "") -> None:
        if self.close_code is not None:
            return
        self.close_code = code
        metrics.WS_CLOSED.labels(reason or str(code)).inc()
        self._wake()
        if self._sending:
            asyncio.get_running_loop().call_later(FORCE_CLOSE_AFTER_SECONDS, self._force_close)

    # -- the writer -----------------------------------------------------------------------------
    async def run(self) -> None:
        """Write frames until closed; then send the close frame (the server ends the connection)."""
        loop = asyncio.get_running_loop()
        tally = _tally()
        while self.close_code is None:
            if self._queue:
                frame_type, text = self._queue.popleft()
                await self._write(text)
                metrics.WS_FRAMES_SENT.labels(frame_type).inc()
            elif self.pending is not None and not self.holding:
                batch, self.pending = self.pending, None
                self.seq += 1
                await self._write(batch.text(self.seq))
                tally.frame(None if batch.observed_at is None else max(0.0, time.time() - batch.observed_at))
            else:
                self._waiter = loop.create_future()
                await self._waiter
        await self._send({"type": "websocket.close", "code": self.close_code})

    async def _write(self, text: str) -> None:
        self._sending = True
        try:
            await self._send({"type": "websocket.send", "text": text})
        finally:
            self._sending = False

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self._waiter = None

    def _force_close(self) -> None:
        if self._sending:
            self._closer = asyncio.ensure_future(self._send({"type": "websocket.close", "code": self.close_code}))
