"""The per-process fan-out hub: one pub/sub subscription in, every local socket out.

One hub per event loop (one per server process in production). It holds the connected consumers
indexed by the symbols they follow, by user and by session. An update cycle costs one message per
process, one JSON encoding per distinct set of changed symbols, and one string concatenation plus
one non-blocking hand-off per socket -- no Redis work per socket.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import defaultdict
from typing import TYPE_CHECKING, cast

from django.conf import settings

from coinlink.contract import timestamp_at
from realtime import async_selectors, bus, events
from realtime.outbox import TickerBatch

if TYPE_CHECKING:
    from realtime.consumers import FeedConsumer

logger = logging.getLogger("realtime.hub")

TOP_LIMIT = 20
READY_TIMEOUT_SECONDS = 3.0
SNAPSHOT_TTL_SECONDS = 2.0
MAX_CACHED_SNAPSHOTS = 256

_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = weakref.WeakKeyDictionary()


def hub_current() -> Hub:
    """The hub of the running event loop, created on first use."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        hub = _hubs[loop] = Hub(loop)
        bus.local_receiver_set(loop, hub.dispatch)
    return hub


class FeedUnsubscribed(RuntimeError):
    """This process serves sockets, but its hub has no live subscription to the feed channel."""


def bus_status() -> dict:
    """`/readyz`'s `channel_layer` check: the feed's pub/sub bus (the project has no Channels layer).

    With Redis: the channel answers and `subscribers` is how many server processes listen on it;
    in a process that serves sockets, its own hub must be subscribed (not in a reconnect backoff).
    """
    if not settings.CONFIG.redis_url:
        return {"backend": "in-process"}
    status = {"backend": "redis", "subscribers": bus.subscribers_count()}
    serving = [hub for loop, hub in list(_hubs.items()) if hub.started and not loop.is_closed()]
    if serving:
        if not any(hub.subscribed for hub in serving):
            raise FeedUnsubscribed("the feed subscription of this process is down")
        status["subscribed"] = True
    return status


# Group key: (quote, symbols) where symbols None means "the top 20 by rank".
GroupKey = tuple[str, frozenset[str] | None]


class Hub:
    """The fan-out of one event loop: it owns everything shared by that loop's sockets, nothing of one socket.

    Owns: the loop's bus subscription (`realtime.bus.listen`) and its state (`subscribed`); the
    indexes of the connected consumers by group (quote, followed symbols), by user and by session,
    and which user and session each consumer was indexed under; the current top symbols per quote;
    the shared snapshot reads; the periodic ping and the session re-check.
    Does not own: a socket's state (the consumer: its subscription, identity, rate limit), its
    writes (its `Outbox`, which the hub only offers frames to), the frames' shapes (`realtime.events`)
    or the transport (`realtime.bus`).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.groups: dict[GroupKey, set[FeedConsumer]] = defaultdict(set)
        self.by_user: dict[str, set[FeedConsumer]] = defaultdict(set)
        self.by_session: dict[str, set[FeedConsumer]] = defaultdict(set)
        self.identities: dict[FeedConsumer, tuple[str, str]] = {}  # consumer -> (user id, session id)
        self.consumers: set[FeedConsumer] = set()
        self.top: dict[str, list[str]] = {}
        self._ready = asyncio.Event()
        self.subscribed = False  # read by bus_status() from a request thread
        self._subscribed_before = False  # a later subscription follows a gap
        self._tasks: list[asyncio.Task] = []
        self._snapshots: dict[tuple, tuple[int, float, asyncio.Future]] = {}
        self._generation: dict[str, int] = defaultdict(int)

    # -- lifecycle ------------------------------------------------------------------------------
    @property
    def started(self) -> bool:
        return bool(self._tasks)

    async def start(self) -> None:
        """Start the subscription and the periodic jobs once; wait (bounded) until subscribed."""
        if not self._tasks:
            if redis_url := settings.CONFIG.redis_url:
                listening = bus.listen(redis_url, receive=self.dispatch, subscribed=self._on_subscribed)
                self._tasks.append(self.loop.create_task(listening, name="realtime-subscribe"))
            else:
                self._ready.set()
            self._tasks.append(self.loop.create_task(self._ping_forever(), name="realtime-ping"))
            self._tasks.append(self.loop.create_task(self._recheck_forever(), name="realtime-recheck"))
        if not self._ready.is_set():
            try:
                await asyncio.wait_for(self._ready.wait(), READY_TIMEOUT_SECONDS)
            except TimeoutError:
                logger.warning("realtime subscription not ready; serving snapshots until Redis answers")

    # -- membership -----------------------------------------------------------------------------
    def add(self, consumer: FeedConsumer) -> None:
        self.consumers.add(consumer)
        self.groups[consumer.group_key].add(consumer)

    def remove(self, consumer: FeedConsumer) -> None:
        self.consumers.discard(consumer)
        self._discard(self.groups, consumer.group_key, consumer)
        self._forget_identity(consumer)

    def regroup(self, consumer: FeedConsumer, old_key: GroupKey) -> None:
        self._discard(self.groups, old_key, consumer)
        self.groups[consumer.group_key].add(consumer)

    def identify(self, consumer: FeedConsumer, *, user_id: str, session_id: str) -> None:
        """Index `consumer` under this user and session (replacing an earlier identity) for pushes and revocations."""
        self._forget_identity(consumer)
        self.identities[consumer] = (user_id, session_id)
        self.by_user[user_id].add(consumer)
        self.by_session[session_id].add(consumer)

    def _forget_identity(self, consumer: FeedConsumer) -> None:
        identity = self.identities.pop(consumer, None)
        if identity is not None:
            self._discard(self.by_user, identity[0], consumer)
            self._discard(self.by_session, identity[1], consumer)

    @staticmethod
    def _discard(index: dict, key, consumer) -> None:
        members = index.get(key)
        if members is not None:
            members.discard(consumer)
            if not members:
                del index[key]

    # -- inbound messages -----------------------------------------------------------------------
    def dispatch(self, payload: str | bytes) -> None:
        """One message from the bus (realtime.bus); runs on the hub's loop, never blocks."""
        try:
            message = bus.message_decode(payload)
            if message["kind"] == "tickers":
                self._on_tickers(message)
            elif message["kind"] == "notification":
                self._on_notification(message)
            elif message["kind"] == "sessions_revoked":
                self._on_sessions_revoked(message)
        except Exception:
            logger.exception("realtime message could not be dispatched")

    def _on_tickers(self, message: bus.TickersMessage) -> None:
        quote = message["quote"]
        if announced := message.get("top"):  # .get: a publisher of another release may leave it out
            self.top[quote] = announced
        self._generation[quote] += 1
        by_symbol = {t["symbol"]: cast(events.Ticker, t) for t in message["tickers"]}
        observed_at = message["observed_at"]  # None for a staleness change: it is news as of now
        timestamp = timestamp_at(observed_at if observed_at is not None else time.time())
        top = set(self.top.get(quote, ()))
        batches: dict[tuple[str, ...], TickerBatch] = {}
        for (group_quote, symbols), consumers in self.groups.items():
            if group_quote != quote or not consumers:
                continue
            follow = top if symbols is None else symbols
            changed = tuple(s for s in by_symbol if s in follow)
            if not changed:
                continue
            batch = batches.get(changed)
            if batch is None:
                tickers = {s: by_symbol[s] for s in changed}
                stale = any(t.get("stale") for t in tickers.values())
                batch = batches[changed] = TickerBatch(tickers, timestamp, stale, observed_at)
                batch.text(0)  # encode once, before the per-socket loop
            for consumer in consumers:
                consumer.outbox.offer_ticker(batch)

    def _on_notification(self, message: bus.NotificationMessage) -> None:
        consumers = self.by_user.get(message["user_id"])
        if not consumers:
            return
        text = events.frame_encode(events.notification_frame(notification=message["notification"]))
        for consumer in consumers:
            consumer.outbox.push("notification", text)

    def _on_sessions_revoked(self, message: bus.SessionsRevokedMessage) -> None:
        for session_id in message["session_ids"]:
            for consumer in list(self.by_session.get(session_id, ())):
                consumer.outbox.close(4001, reason="session_revoked")

    # -- snapshots ------------------------------------------------------------------------------
    async def snapshot(self, *, quote: str, symbols: frozenset[str] | None) -> TickerBatch:
        """The current tickers of a symbol set, read and encoded once for the sockets connecting together.

        A read is reused only while no update cycle of that quote has arrived since it started, so a
        socket that registered after a cycle never receives a snapshot older than that cycle.
        """
        key = (quote, symbols)
        generation = self._generation[quote]
        cached = self._snapshots.get(key)
        now = self.loop.time()
        if cached is None or cached[0] != generation or now - cached[1] > SNAPSHOT_TTL_SECONDS:
            if len(self._snapshots) >= MAX_CACHED_SNAPSHOTS:
                self._snapshots_prune(now)
            cached = (generation, now, self.loop.create_future())
            self._snapshots[key] = cached
            self.loop.create_task(self._snapshot_fill(key, cached[2]))
        return await asyncio.shield(cached[2])

    def _snapshots_prune(self, now: float) -> None:
        """Forget finished reads past their TTL, so distinct subscriptions cannot grow the cache without bound."""
        for key, (_, started, future) in list(self._snapshots.items()):
            if future.done() and now - started > SNAPSHOT_TTL_SECONDS:
                del self._snapshots[key]

    async def _snapshot_fill(self, key: tuple, future: asyncio.Future) -> None:
        quote, symbols = key
        try:
            result = await async_selectors.ticker_snapshot(quote=quote, symbols=symbols, limit=TOP_LIMIT)
        except Exception as exc:
            if self._snapshots.get(key, (0, 0, None))[2] is future:
                del self._snapshots[key]  # a failure is not worth remembering
            future.set_exception(exc)
            future.exception()  # mark retrieved: each waiter gets its own copy through the shield
            return
        if symbols is None and result["data"] and quote not in self.top:
            self.top[quote] = [t["symbol"] for t in result["data"]]
        batch = TickerBatch({t["symbol"]: t for t in result["data"]}, result["timestamp"], result["stale"])
        batch.text(0)  # encoded once for every socket that shares this snapshot
        future.set_result(batch)

    # -- periodic jobs --------------------------------------------------------------------------
    def _on_subscribed(self, up: bool) -> None:
        self.subscribed = up
        if not up:
            return
        self._ready.set()
        if self._subscribed_before:
            self.loop.create_task(self._resync())
        self._subscribed_before = True

    async def _resync(self) -> None:
        """After a gap in the subscription (pub/sub does not replay), give every socket a fresh snapshot."""
        for quote in list(self._generation):
            self._generation[quote] += 1
        for (quote, symbols), consumers in list(self.groups.items()):
            if not consumers:
                continue
            try:
                batch = await self.snapshot(quote=quote, symbols=symbols)
            except Exception:
                logger.warning("resync snapshot failed", exc_info=True)
                continue
            for consumer in list(consumers):
                consumer.outbox.offer_snapshot(batch)

    async def _ping_forever(self) -> None:
        while True:
            await asyncio.sleep(settings.WS_PING_SECONDS)
            text = events.frame_encode(events.ping_frame())
            for consumer in list(self.consumers):
                if not consumer.outbox.has_queued("ping"):
                    consumer.outbox.push("ping", text)

    async def _recheck_forever(self) -> None:
        """Safety net behind the revocation broadcast: ask the (cache-backed) session state now and then."""
        while True:
            await asyncio.sleep(settings.WS_SESSION_RECHECK_SECONDS)
            session_ids = list(self.by_session)
            if not session_ids:
                continue
            try:
                ended = await async_selectors.sessions_ended(session_ids=session_ids)
            except Exception:
                logger.warning("session re-check failed", exc_info=True)
                continue
            for session_id in ended:
                for consumer in list(self.by_session.get(session_id, ())):
                    consumer.outbox.close(4001, reason="session_revoked")
