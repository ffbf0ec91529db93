"""Request bodies kept within MAX_REQUEST_BODY_BYTES where the server hands them over, before Django.

Django's ASGI handler reads a whole body before any middleware runs, and its WSGI request reads only
`Content-Length` bytes (a chunked body arrives empty). So these wrappers sit between the server and
Django: a declared length over the limit is not read at all, and a chunked body is counted as it
streams, cut off past the limit, and otherwise handed on whole with its `Content-Length`. A refused
body reaches Django empty and marked, and `RequestGuardMiddleware` answers the 413 in the contract's
shape, with the request id and access-log line every answer gets.
"""

from __future__ import annotations

import asyncio
import io

from django.conf import settings

OVER_LIMIT = "coinlink.body_over_limit"
_CHUNK = 64 * 1024


def body_over_limit(request) -> bool:
    """Whether a wrapper below refused this request's body (the ASGI scope or the WSGI environ says)."""
    marks = getattr(request, "scope", None) or request.META
    return bool(marks.get(OVER_LIMIT))


def _declared_over(value: str | bytes | None) -> bool:
    try:
        return int(value or 0) > settings.MAX_REQUEST_BODY_BYTES
    except ValueError:  # not a number: RequestGuardMiddleware answers 400
        return False


def _is_chunked(value: str | bytes | None) -> bool:
    text = value.decode("latin1") if isinstance(value, bytes) else value or ""
    return "chunked" in text.lower()


class BodyLimitASGI:
    """Wraps the Django ASGI app for `http` scopes."""

    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.application(scope, receive, send)
        headers = dict(scope.get("headers", ()))
        if _is_chunked(headers.get(b"transfer-encoding")):
            body = await _read_capped(receive)
            if body is None:
                return await self._refuse(scope, send)
            return await self.application(_with_length(scope, len(body)), _replay(body, then=receive), send)
        if _declared_over(headers.get(b"content-length")):
            return await self._refuse(scope, send)
        return await self.application(scope, receive, send)

    async def _refuse(self, scope, send):
        async def closing(message):
            # The rest of the body is still on its way: without this the server would read it all.
            if message["type"] == "http.response.start":
                message = dict(message, headers=[*message.get("headers", ()), (b"connection", b"close")])
            await send(message)

        return await self.application({**scope, OVER_LIMIT: True}, _replay(b"", then=_never), closing)


async def _read_capped(receive) -> bytes | None:
    """The whole body, or None as soon as it grows past the limit (the rest is never read)."""
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return bytes(body)  # the client went away; Django answers what it got
        body += message.get("body", b"")
        if len(body) > settings.MAX_REQUEST_BODY_BYTES:
            return None
        if not message.get("more_body", False):
            return bytes(body)


def _with_length(scope, length: int) -> dict:
    kept = [(k, v) for k, v in scope.get("headers", ()) if k not in (b"transfer-encoding", b"content-length")]
    return {**scope, "headers": [*kept, (b"content-length", str(length).encode())]}


def _replay(body: bytes, *, then):
    """A `receive` that hands over `body` whole, then defers to `then` (Django listens for a disconnect)."""
    sent = False

    async def receive():
        nonlocal sent
        if sent:
            return await then()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def _never():
    # After a refusal the server's receive would hand Django the rest of the body, which it must not
    # read; Django cancels this wait once the 413 is sent.
    await asyncio.get_running_loop().create_future()


class BodyLimitWSGI:
    """Wraps the Django WSGI app: gunicorn decodes a chunked body, this counts it as it arrives."""

    def __init__(self, application):
        self.application = application

    def __call__(self, environ, start_response):
        if _is_chunked(environ.get("HTTP_TRANSFER_ENCODING")) and not environ.get("CONTENT_LENGTH"):
            environ = _whole_body(environ)
        return self.application(environ, start_response)


def _whole_body(environ) -> dict:
    stream, body = environ["wsgi.input"], bytearray()
    while len(body) <= settings.MAX_REQUEST_BODY_BYTES:
        chunk = stream.read(_CHUNK)
        if not chunk:
            return {**environ, "wsgi.input": io.BytesIO(bytes(body)), "CONTENT_LENGTH": str(len(body))}
        body += chunk
    # gunicorn's sync worker closes the connection after the answer: the rest is never read.
    return {**environ, "wsgi.input": io.BytesIO(), "CONTENT_LENGTH": "0", OVER_LIMIT: True}
