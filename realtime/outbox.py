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
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

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
    """Frames for one socket, in order. Every method but `run` is non-blocking.

    Fast path: when the socket's writer is idle, a frame is written inline by whoever offers it (the
    hub's loop over its sockets), so a cycle costs no task switch per socket. The ASGI `send` is
    stepped once by hand; if the server applies backpressure (the coroutine suspends), the writer task
    takes that send over and finishes it, and everything after it queues or coalesces behind it.
    """

    def __init__(self, send: Callable[[dict], Coroutine[Any, Any, None]]):  # stepped by hand: a coroutine
        self._send = send
        self._queue: deque[tuple[str, str]] = deque()
        self.pending: TickerBatch | None = None
        self.holding = True  # until the connect snapshot is in, updates only accumulate
        self.seq = 0
        self.close_code: int | None = None
        self._waiter: asyncio.Future | None = None  # set while the writer task is parked (idle)
        self._stalled: tuple[Coroutine, Any, str | None, float | None] | None = None
        self._sending = False
        self._closer: asyncio.Future | None = None
        self._tally: _Tally | None = None

    # -- producers (hub, consumer) --------------------------------------------------------------
    def push(self, frame_type: str, text: str) -> None:
        if self.close_code is not None:
            return
        if self._idle():
            self._write_inline(text, frame_type, None)
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
            if not self.holding and self._idle():
                self._write_batch_inline(batch)
                return
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
        if self._sending or self._stalled is not None:
            asyncio.get_running_loop().call_later(FORCE_CLOSE_AFTER_SECONDS, self._force_close)

    # -- inline writes --------------------------------------------------------------------------
    def _idle(self) -> bool:
        """The writer task is parked with nothing queued: a frame can be written right here."""
        return self._waiter is not None and self._stalled is None and not self._queue

    def _write_batch_inline(self, batch: TickerBatch) -> None:
        self.seq += 1
        latency = None if batch.observed_at is None else max(0.0, time.time() - batch.observed_at)
        self._write_inline(batch.text(self.seq), None, latency)

    def _write_inline(self, text: str, frame_type: str | None, latency: float | None) -> None:
        coro = self._send({"type": "websocket.send", "text": text})
        try:
            step = coro.send(None)
        except StopIteration:
            self._written(frame_type, latency)
            return
        except Exception:
            self._gone()
            return
        self._stalled = (coro, step, frame_type, latency)
        self._wake()

    def _written(self, frame_type: str | None, latency: float | None) -> None:
        if frame_type is None:
            if self._tally is None:
                self._tally = _tally()
            self._tally.frame(latency)
        else:
            metrics.WS_FRAMES_SENT.labels(frame_type).inc()

    def _gone(self) -> None:
        """The peer went away under a send; the consumer's receive loop sees the disconnect and cleans up."""
        if self.close_code is None:
            self.close_code = 1006
        self._wake()

    # -- the writer -----------------------------------------------------------------------------
    async def run(self) -> None:
        """Write what the fast path could not, in order, until closed; then send the close frame."""
        loop = asyncio.get_running_loop()
        try:
            while self.close_code is None:
                if self._stalled is not None:
                    coro, step, frame_type, latency = self._stalled
                    await _finish(coro, step)
                    self._stalled = None
                    self._written(frame_type, latency)
                elif self._queue:
                    frame_type, text = self._queue.popleft()
                    await self._write(text)
                    self._written(frame_type, None)
                elif self.pending is not None and not self.holding:
                    batch, self.pending = self.pending, None
                    self.seq += 1
                    await self._write(batch.text(self.seq))
                    self._written(None, None if batch.observed_at is None else time.time() - batch.observed_at)
                else:
                    self._waiter = loop.create_future()
                    try:
                        await self._waiter
                    finally:
                        self._waiter = None
            if self.close_code != 1006:
                await self._send({"type": "websocket.close", "code": self.close_code})
        except asyncio.CancelledError:
            raise
        except Exception:
            self._gone()  # a send failed: the connection is gone

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

    def _force_close(self) -> None:
        if self._sending or self._stalled is not None:
            self._closer = asyncio.ensure_future(self._send({"type": "websocket.close", "code": self.close_code}))


async def _finish(coro: Coroutine, step: Any) -> None:
    """Run to completion, inside the calling task, a coroutine already stepped once by hand."""
    try:
        while True:
            if step is None:
                await asyncio.sleep(0)
            else:
                await asyncio.wait([step])
            try:
                step = coro.send(None)
            except StopIteration:
                return
    except BaseException:
        coro.close()
        raise
