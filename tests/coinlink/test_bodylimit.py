"""coinlink.bodylimit at the limit's edge, driving the real ASGI and WSGI applications with the messages
and environ a server hands them (the servers themselves: tests/coinlink/test_body_limits_live.py)."""

from __future__ import annotations

import io
import json

import pytest
from asgiref.testing import ApplicationCommunicator

pytestmark = pytest.mark.django_db(transaction=True)

LIMIT = 1024
PATH = "/api/v2/auth/login"


@pytest.fixture(autouse=True)
def _limit(settings):
    settings.MAX_REQUEST_BODY_BYTES = LIMIT
    settings.RATELIMIT_ENABLED = False


def _login_body(size: int) -> bytes:
    """A sign-in of exactly `size` bytes, padded with JSON whitespace."""
    head = b'{"email": "nobody@example.com", "password": "not-the-password"'
    return head + b" " * (size - len(head) - 1) + b"}"


async def _asgi(parts: list[bytes], headers: list[tuple[bytes, bytes]]) -> tuple[int, dict, dict]:
    from coinlink.asgi import application

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": PATH, "raw_path": PATH.encode(), "query_string": b"", "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000"), (b"content-type", b"application/json"), *headers],
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
    }  # fmt: skip
    app = ApplicationCommunicator(application, scope)
    for index, part in enumerate(parts):
        await app.send_input({"type": "http.request", "body": part, "more_body": index < len(parts) - 1})
    start = await app.receive_output(10)
    body = await app.receive_output(10)
    return start["status"], json.loads(body["body"]), dict(start["headers"])


def _wsgi(body: bytes) -> tuple[int, dict]:
    """gunicorn's environ for a chunked request: no CONTENT_LENGTH, wsgi.input yields the decoded body."""
    from coinlink.wsgi import application

    environ = {
        "REQUEST_METHOD": "POST", "PATH_INFO": PATH, "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "127.0.0.1",
        "CONTENT_TYPE": "application/json", "HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http", "wsgi.errors": io.StringIO(), "wsgi.multithread": False,
        "wsgi.multiprocess": True, "wsgi.run_once": False, "wsgi.version": (1, 0),
    }  # fmt: skip
    started = {}
    chunks = application(environ, lambda status, headers, *_: started.update(status=int(status.split()[0])))
    return started["status"], json.loads(b"".join(chunks))


CHUNKED = [(b"transfer-encoding", b"chunked")]


async def test_a_chunked_body_of_exactly_the_limit_is_processed():
    body = _login_body(LIMIT)
    status, payload, _ = await _asgi([body[:300], body[300:]], CHUNKED)
    assert status == 401, payload  # parsed: the credentials are wrong


async def test_a_chunked_body_one_byte_past_the_limit_is_413_and_closes_the_connection():
    body = _login_body(LIMIT + 1)
    status, payload, headers = await _asgi([body[:300], body[300:]], CHUNKED)
    assert (status, payload["code"]) == (413, "payload_too_large") and payload["trace_id"]
    assert headers[b"connection"] == b"close"


async def test_a_declared_length_past_the_limit_is_413_without_reading_any_body():
    status, payload, headers = await _asgi([], [(b"content-length", str(LIMIT + 1).encode())])
    assert (status, payload["code"], headers[b"connection"]) == (413, "payload_too_large", b"close")


async def test_a_body_with_both_headers_is_counted_as_chunked():
    body = _login_body(LIMIT + 1)
    status, payload, _ = await _asgi([body], [*CHUNKED, (b"content-length", b"10")])
    assert (status, payload["code"]) == (413, "payload_too_large")


def test_under_wsgi_a_chunked_body_is_read_up_to_the_limit_only():
    assert _wsgi(_login_body(LIMIT))[0] == 401
    status, payload = _wsgi(_login_body(LIMIT + 1))
    assert (status, payload["code"]) == (413, "payload_too_large")
