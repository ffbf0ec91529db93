"""The WebSocket feed's typed producer module: every frame the server sends, and the three publishers.

Publishers are sync and safe from Celery workers, request threads and the embedded scheduler thread.
With Redis, each call is ONE `PUBLISH` on a channel namespaced by the Redis DB number; every server
process holds one subscription (`realtime.hub`) and fans out to its own sockets. Embedded (no Redis),
the message is handed to each in-process hub's event loop with `call_soon_threadsafe`.
Nothing else outside `realtime` talks to pub/sub.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Literal, NotRequired, TypedDict
from urllib.parse import urlparse

from django.conf import settings

from coinlink.contract import json_default, timestamp_at

logger = logging.getLogger("realtime.events")


# --- Frames the server sends ------------------------------------------------------------------
class Ticker(TypedDict):
    symbol: str
    name: str
    price: float | None
    change_24h: float | None
    change_percent_24h: float | None
    volume_24h: float | None
    market_cap: float | None
    rank: int | None
    last_updated: str | None
    source: str
    stale: bool


class ConnectedFrame(TypedDict):
    type: Literal["connected"]
    connection_id: str
    timestamp: str


class TickerUpdateFrame(TypedDict):
    type: Literal["crypto_ticker_update"]
    data: list[Ticker]
    timestamp: str
    stale: bool
    seq: int


class PingFrame(TypedDict):
    type: Literal["ping"]
    timestamp: str


class PongFrame(TypedDict):
    type: Literal["pong"]
    timestamp: str


class FrameUser(TypedDict):
    id: str
    email: str


class AuthenticatedFrame(TypedDict):
    type: Literal["authenticated"]
    user: FrameUser


class NotificationFrame(TypedDict):
    type: Literal["notification"]
    data: dict[str, Any]


class ErrorFrame(TypedDict):
    type: Literal["error"]
    code: str
    detail: str
    symbols: NotRequired[list[str]]


Frame = ConnectedFrame | TickerUpdateFrame | PingFrame | PongFrame | AuthenticatedFrame | NotificationFrame | ErrorFrame


def now_iso() -> str:
    return timestamp_at(time.time())


def frame_encode(frame: Frame) -> str:
    return json.dumps(frame, separators=(",", ":"), default=json_default)


def connected_frame(*, connection_id: str) -> ConnectedFrame:
    return {"type": "connected", "connection_id": connection_id, "timestamp": now_iso()}


def ping_frame() -> PingFrame:
    return {"type": "ping", "timestamp": now_iso()}


def pong_frame() -> PongFrame:
    return {"type": "pong", "timestamp": now_iso()}


def authenticated_frame(*, user_id: str, email: str) -> AuthenticatedFrame:
    return {"type": "authenticated", "user": {"id": user_id, "email": email}}


def notification_frame(*, notification: dict[str, Any]) -> NotificationFrame:
    return {"type": "notification", "data": notification}


def error_frame(*, code: str, detail: str, symbols: list[str] | None = None) -> ErrorFrame:
    frame: ErrorFrame = {"type": "error", "code": code, "detail": detail}
    if symbols is not None:
        frame["symbols"] = symbols
    return frame


def ticker_update_prefix(*, data: list[Ticker], timestamp: str, stale: bool) -> str:
    """A `crypto_ticker_update` frame encoded up to its `seq` value; `ticker_update_text` completes it.

    The body is shared by every socket that follows the same symbols and differs only by `seq`, so it
    is encoded once per update cycle and the per-socket cost is one string concatenation.
    """
    head = frame_encode(
        {"type": "crypto_ticker_update", "data": data, "timestamp": timestamp, "stale": stale, "seq": 0}
    )
    assert head.endswith(',"seq":0}')
    return head[: -len("0}")]


def ticker_update_text(prefix: str, seq: int) -> str:
    return f"{prefix}{seq}}}"


# --- Publishers ------------------------------------------------------------------------------
def ticker_update_publish(*, quote: str, tickers: list[dict], observed_at: float | None) -> None:
    """Announce one update cycle's changed tickers to every server process (one publish, any number of sockets).

    `observed_at` is None when only their staleness changed: no fresh price, so no latency sample.
    """
    if not tickers:
        return
    _publish({"kind": "tickers", "quote": quote, "tickers": tickers, "observed_at": observed_at, "top": _top_symbols()})


def notification_push(*, user_id: str, notification: dict) -> None:
    """Deliver a contract notification to every open socket of `user_id`, in every process."""
    _publish({"kind": "notification", "user_id": str(user_id), "notification": notification})


def notification_push_many(*, notifications: list[tuple[str, dict]]) -> None:
    """`notification_push` for many (user_id, notification) pairs in one Redis round trip (pipelined)."""
    _publish_many(
        [{"kind": "notification", "user_id": str(user_id), "notification": n} for user_id, n in notifications]
    )


def sessions_revoked_publish(*, user_id: str, session_ids: list[str], reason: str) -> None:
    """Close (4001) every socket authenticated with one of these sessions, in every process."""
    if not session_ids:
        return
    _publish(
        {
            "kind": "sessions_revoked",
            "user_id": str(user_id),
            "session_ids": [str(s) for s in session_ids],
            "reason": reason,
        }
    )


def channel_name(*, redis_url: str | None = None) -> str:
    """The pub/sub channel on `redis_url` (default: REDIS_URL): pub/sub ignores DB numbers, so the DB is
    part of the name. Given `redis_url`, it needs no Django setup (the benchmarks listen on it)."""
    url = (settings.CONFIG.redis_url if redis_url is None else redis_url) or ""
    path = urlparse(url).path.strip("/")
    db = path if path.isdigit() else "0"
    return f"coinlink:{db}:realtime"


def _top_symbols() -> list[str] | None:
    """The current top-20 by rank, for sockets that subscribed to nothing; computed once per cycle here."""
    try:
        from markets.selectors import asset_symbols_top

        return list(asset_symbols_top(limit=20))
    except Exception:
        logger.warning("top symbols unavailable; hubs keep the previous list", exc_info=True)
        return None


def _publish(message: dict) -> None:
    _publish_many([message])


def _publish_many(messages: list[dict]) -> None:
    if not messages:
        return
    payloads = [json.dumps(m, separators=(",", ":"), default=json_default) for m in messages]
    if settings.CONFIG.redis_url is None:
        from realtime import hub

        for payload in payloads:
            hub.deliver_local(payload)
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
