"""Handshake guards in front of the feed: allowed Origin, and a cap on open sockets per client IP.

Both refuse before `websocket.accept`, which servers answer with HTTP 403. Identity is not decided
here: a client authenticates in-band with an `authenticate` frame (see realtime.consumers).
"""

from __future__ import annotations

import logging
from collections import Counter
from urllib.parse import urlparse

from asgiref.typing import ASGI3Application
from channels.security.websocket import OriginValidator
from django.conf import settings

from coinlink import metrics
from coinlink.net import client_ip_from

logger = logging.getLogger("realtime.handshake")

# Names a browser on this machine may use for a development server's own page.
_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


async def deny(scope, receive, send, *, reason: str = "") -> None:
    """Refuse a WebSocket handshake (403) without touching any channel layer, and say why in one line."""
    message = await receive()
    if message["type"] == "websocket.connect":
        handshake_refused(scope, reason or f"no WebSocket endpoint at {scope.get('path', '')[:200]!r}")
        await send({"type": "websocket.close"})


def handshake_refused(scope, reason: str) -> None:
    logger.warning("WebSocket handshake from %s refused: %s", client_ip(scope), reason)


class AllowedOriginValidator(OriginValidator):
    """Channels' exact scheme/host/port matching against settings.WS_ALLOWED_ORIGINS, read per handshake.

    In development the server's own page is allowed too, whatever port it listens on: its origin on a
    loopback name or on the address the socket reached, at the server's port (the ASGI scope's
    `server`). So `PORT=8765 scripts/run`, `manage.py serve --port 8765` and a bare uvicorn all work.
    """

    def __init__(self, application: ASGI3Application):
        self.inner = application  # not `application`: Channels types that one as ASGI2 or ASGI3
        self.allowed_origins = ()

    async def __call__(self, scope, receive, send):
        origin = _header(scope, b"origin")
        allowed = [*settings.WS_ALLOWED_ORIGINS, *_own_origins(scope)]
        if origin is None or not self._matches(origin, allowed):
            metrics.WS_CLOSED.labels("origin_refused").inc()
            shown = "no Origin header" if origin is None else f"Origin {origin[:200]!r} is not allowed"
            return await deny(scope, receive, send, reason=f"{shown} (allowed: {', '.join(allowed) or 'none'})")
        return await self.inner(scope, receive, send)

    def _matches(self, origin: str, allowed: list[str]) -> bool:
        try:
            parsed = urlparse(origin)
            return any(self.match_allowed_origin(parsed, pattern) for pattern in allowed)
        except ValueError:  # a port that is no port (`:99999`, `:8000.evil.com`) matches nothing
            return False


def _own_origins(scope) -> list[str]:
    server = scope.get("server")
    if settings.PRODUCTION or not server or not server[1]:
        return []
    host, port = str(server[0]), server[1]
    names = dict.fromkeys([*_LOOPBACK_NAMES, f"[{host}]" if ":" in host else host])
    return [f"http://{name}:{port}" for name in names]


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
            reason = f"this address is at WS_MAX_PER_IP={settings.WS_MAX_PER_IP} open sockets"
            return await deny(scope, receive, send, reason=reason)
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
