"""Handshake guards in front of the feed: allowed Origin, and a cap on open sockets per client IP.

Both refuse before `websocket.accept`, which servers answer with HTTP 403. Identity is not decided
here: a client authenticates in-band with an `authenticate` frame (see realtime.consumers).
"""

from __future__ import annotations

from collections import Counter
from urllib.parse import urlparse

from asgiref.typing import ASGI3Application
from channels.security.websocket import OriginValidator
from django.conf import settings

from coinlink import metrics
from coinlink.net import client_ip_from


async def deny(scope, receive, send) -> None:
    """Refuse a WebSocket handshake (403) without touching any channel layer."""
    message = await receive()
    if message["type"] == "websocket.connect":
        await send({"type": "websocket.close"})


class AllowedOriginValidator(OriginValidator):
    """Channels' exact scheme/host/port matching against settings.WS_ALLOWED_ORIGINS, read per handshake."""

    def __init__(self, application: ASGI3Application):
        self.inner = application  # not `application`: Channels types that one as ASGI2 or ASGI3

    @property
    def allowed_origins(self):  # type: ignore[override]  # read per handshake, not fixed at start
        return settings.WS_ALLOWED_ORIGINS

    async def __call__(self, scope, receive, send):
        origin = _header(scope, b"origin")
        parsed = None
        if origin is not None:
            try:
                parsed = urlparse(origin)
            except ValueError:
                parsed = None
        if parsed is None or not self.valid_origin(parsed):
            metrics.WS_CLOSED.labels("origin_refused").inc()
            return await deny(scope, receive, send)
        return await self.inner(scope, receive, send)


class ClientLimitMiddleware:
    """At most settings.WS_MAX_PER_IP open sockets per client address in this process.

    The address is the peer, or -- only when the peer is one of TRUSTED_PROXIES -- the first untrusted
    hop of X-Forwarded-For (coinlink.net's rule). The count is per server process: N processes behind
    a balancer admit up to N times the limit from one address.
    """

    open_per_ip: Counter[str] = Counter()

    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        ip = client_ip(scope)
        if self.open_per_ip[ip] >= settings.WS_MAX_PER_IP:
            metrics.WS_CLOSED.labels("ip_limit").inc()
            return await deny(scope, receive, send)
        self.open_per_ip[ip] += 1
        try:
            return await self.application(dict(scope, client_ip=ip), receive, send)
        finally:
            self.open_per_ip[ip] -= 1
            if self.open_per_ip[ip] <= 0:
                del self.open_per_ip[ip]


def client_ip(scope) -> str:
    client = scope.get("client") or ("", 0)
    return client_ip_from(str(client[0] or ""), _header(scope, b"x-forwarded-for")) or "unknown"


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin1")
    return None
