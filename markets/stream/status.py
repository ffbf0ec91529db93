"""What the streamer is doing: one log line per change of state, and a shared status for /readyz.

Offline, the client retries for as long as it runs; the log says "down" once, then nothing until
the state changes again (connected, stalled), never a line per attempt.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.cache import cache

from coinlink import metrics

logger = logging.getLogger("markets.stream")

STATUS_KEY = "markets:stream:status"


class StreamState:
    def __init__(self):
        self.state = "starting"
        self.leader: bool | None = None
        self.products = 0
        self.last_message_at: float | None = None

    @property
    def connected(self) -> bool:
        return self.state == "connected"

    def change(self, state: str, line: str, *args, level: int = logging.INFO) -> None:
        """Enter `state`, logging `line` only if that is a change."""
        if state == self.state:
            return
        self.state = state
        metrics.STREAM_CONNECTED.set(1 if self.connected else 0)
        logger.log(level, line, *args)

    def leadership(self, leader: bool) -> None:
        if leader == self.leader:
            return
        self.leader = leader
        metrics.STREAM_LEADER.set(1 if leader else 0)
        logger.info("market stream: %s", "this process is the leader and publishes" if leader else "standby")

    def as_dict(self) -> dict:
        return {
            "connected": self.connected,
            "state": self.state,
            "products": self.products,
            "last_message_at": self.last_message_at,
        }


def stream_status_put(*, state: StreamState, ttl: float) -> None:
    """The leader's status, for every process's /readyz; it expires with the leader."""
    cache.set(STATUS_KEY, state.as_dict(), max(1, round(ttl)))


def stream_status_get() -> dict:
    """For /readyz: ok while connected, else down (readiness is degraded, never failed, by it)."""
    if not settings.MARKET_STREAM_ENABLED:
        return {"status": "ok", "enabled": False}
    shared = cache.get(STATUS_KEY)
    if shared is None:
        return {"status": "down", "connected": False, "products": 0, "last_message_age_seconds": None}
    last = shared["last_message_at"]
    return {
        "status": "ok" if shared["connected"] else "down",
        "connected": shared["connected"],
        "products": shared["products"],
        "last_message_age_seconds": None if last is None else round(max(0.0, time.time() - last), 1),
    }
