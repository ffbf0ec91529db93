"""The feed's internal bus: the messages server processes exchange, and the transport that carries them.

With Redis, a message is one `PUBLISH` of a JSON object on one channel, and every server process
holds one subscription to it (`listen`). Embedded (no Redis), a message is handed to each hub's event
loop in this process with `call_soon_threadsafe`. The JSON is the wire format between processes of
different releases during a rolling deploy, and bench/ reads it (`kind`, `quote`, `tickers`,
`observed_at`): change it only together with both.

Nothing here knows what a hub does with a message, and nothing outside `realtime` imports this
module except bench/, for `channel_name` (which needs no Django setup when given `redis_url`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import weakref
from collections.abc import Callable
from typing import Any, Literal, TypedDict
from urllib.parse import urlparse

from django.conf import settings

from coinlink.contract import json_default

logger = logging.getLogger("realtime.bus")


# --- Messages --------------------------------------------------------------------------------
class TickersMessage(TypedDict):
    kind: Literal["tickers"]
    quote: str
    tickers: list[dict[str, Any]]  # each becomes a frame's `Ticker` once encoded (Decimal -> float)
    observed_at: float | None  # None: only staleness changed, no fresh price
    top: list[str] | None  # the current top symbols by rank; None: unknown, keep the previous list


class NotificationMessage(TypedDict):
    kind: Literal["notification"]
    user_id: str
    notification: dict[str, Any]


class SessionsRevokedMessage(TypedDict):
    kind: Literal["sessions_revoked"]
    user_id: str
    session_ids: list[str]
    reason: str


Message = TickersMessage | NotificationMessage | SessionsRevokedMessage


def message_decode(payload: str | bytes) -> Message:
    return json.loads(payload)


# --- Naming ----------------------------------------------------------------------------------
def channel_name(*, redis_url: str | None = None) -> str:
    """The pub/sub channel on `redis_url` (default: REDIS_URL): pub/sub ignores DB numbers, so the DB is
    part of the name. Given `redis_url`, it needs no Django setup (the benchmarks listen on it)."""
    url = (settings.CONFIG.redis_url if redis_url is None else redis_url) or ""
    path = urlparse(url).path.strip("/")
    db = path if path.isdigit() else "0"
    return f"coinlink:{db}:realtime"


def subscriber_name() -> str:
    """The Redis CLIENT name of this process's subscription (visible in CLIENT LIST)."""
    return f"coinlink-realtime-{os.getpid()}"


# --- Publishing ------------------------------------------------------------------------------
Receiver = Callable[[str], None]

# Embedded mode: each event loop's receiver (its hub's dispatch), reached from any thread.
_local: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Receiver] = weakref.WeakKeyDictionary()


def local_receiver_set(loop: asyncio.AbstractEventLoop, receive: Receiver) -> None:
    _local[loop] = receive


def publish(messages: list[Message]) -> None:
    """Send messages to every server process, pipelined in one Redis round trip; best effort, never raises."""
    if not messages:
        return
    payloads = [json.dumps(m, separators=(",", ":"), default=json_default) for m in messages]
    if settings.CONFIG.redis_url is None:
        for payload in payloads:
            _deliver_local(payload)
        return
    try:
        from coinlink.redis import get_redis

        if len(payloads) == 1:
            get_redis().publish(channel_name(), payloads[0])
            return
        pipe = get_redis().pipeline(transaction=False)
        for payload in payloads:
            pipe.publish(channel_name(), payload)
        pipe.execute()
    except Exception:
        # The feed is best effort: an ingest or a notification must not fail because Redis blinked.
        logger.warning("realtime publish of %d %s message(s) failed", len(messages), messages[0]["kind"], exc_info=True)


def _deliver_local(payload: str) -> None:
    for loop, receive in list(_local.items()):
        if loop.is_closed():
            continue
        try:
            loop.call_soon_threadsafe(receive, payload)
        except RuntimeError:  # the loop closed between the check and the call
            pass


# --- Subscribing -----------------------------------------------------------------------------
def subscribers_count() -> int:
    """How many server processes listen on the channel (Redis only)."""
    from coinlink.redis import get_redis

    [(_, subscribers)] = get_redis().pubsub_numsub(channel_name())
    return subscribers


async def listen(redis_url: str, *, receive: Callable[[str | bytes], None], subscribed: Callable[[bool], None]) -> None:
    """Hand every message on the channel to `receive`, reconnecting with backoff (0.5 s -> 10 s) forever.

    `subscribed(True)` is called each time the subscription is (re)established, `subscribed(False)` each
    time it is lost; pub/sub does not replay what was published in between.
    """
    import redis.asyncio as aioredis

    backoff = 0.5
    while True:
        client = aioredis.Redis.from_url(
            redis_url,
            socket_connect_timeout=2,
            socket_keepalive=True,
            health_check_interval=15,
            client_name=subscriber_name(),
        )
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        up = False
        try:
            await pubsub.subscribe(channel_name())
            up = True
            subscribed(True)
            backoff = 0.5
            async for message in pubsub.listen():
                if message.get("type") == "message":
                    receive(message["data"])
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning("realtime subscription lost (%s); retrying in %.1fs", exc.__class__.__name__, backoff)
        finally:
            if up:
                subscribed(False)
            await _quietly(pubsub.aclose())
            await _quietly(client.aclose())
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, 10.0)


async def _quietly(awaitable) -> None:
    try:
        await awaitable
    except Exception as exc:
        logger.debug("ignored while closing the subscription: %r", exc)
