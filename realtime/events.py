"""The WebSocket feed's typed producer module: every frame the server sends, and the three publishers.

Publishers are sync and safe from Celery workers, request threads and the embedded scheduler thread.
Each call is ONE message on the bus (`realtime.bus`: one Redis `PUBLISH`, or a hand-off to this
process's hubs when embedded); every server process's hub (`realtime.hub`) fans it out to its own
sockets. Other apps reach the feed only through these publishers.
"""

from __future__ import annotations

import json
import time
from typing import Any, Literal, NotRequired, TypedDict

from coinlink.contract import json_default, timestamp_at
from markets.vocabulary import Ticker
from realtime import bus


# --- Frames the server sends ------------------------------------------------------------------
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
def ticker_update_publish(
    *, quote: str, tickers: list[dict], observed_at: float | None, top: list[str] | None = None
) -> None:
    """Announce one update cycle's changed tickers to every server process (one publish, any number of sockets).

    `observed_at` is None when only their staleness changed: no fresh price, so no latency sample.
    `top` is the current top symbols by rank, for sockets that subscribed to nothing (None: unchanged).
    """
    if not tickers:
        return
    bus.publish([{"kind": "tickers", "quote": quote, "tickers": tickers, "observed_at": observed_at, "top": top}])


def notification_push(*, user_id: str, notification: dict) -> None:
    """Deliver a contract notification to every open socket of `user_id`, in every process."""
    notification_push_many(notifications=[(user_id, notification)])


def notification_push_many(*, notifications: list[tuple[str, dict]]) -> None:
    """`notification_push` for many (user_id, notification) pairs in one Redis round trip (pipelined)."""
    bus.publish([{"kind": "notification", "user_id": str(user_id), "notification": n} for user_id, n in notifications])


def sessions_revoked_publish(*, user_id: str, session_ids: list[str], reason: str) -> None:
    """Close (4001) every socket authenticated with one of these sessions, in every process."""
    if not session_ids:
        return
    bus.publish(
        [
            {
                "kind": "sessions_revoked",
                "user_id": str(user_id),
                "session_ids": [str(s) for s in session_ids],
                "reason": reason,
            }
        ]
    )
