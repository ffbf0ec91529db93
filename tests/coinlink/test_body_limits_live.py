"""Body limits through the real HTTP servers we ship: gunicorn (production's web) and `manage.py serve`
(what scripts/run starts). A declared length past the limit is refused before the body is read; a
chunked body is counted as it streams and cut off once past the limit; both answer 413 in the
contract's error shape and close the connection. A chunked body within the limit is processed."""

from __future__ import annotations

import http.client
import json
import select
import socket
import time

import pytest

from tests.coinlink.procs import child_env, free_port, http_get, start_gunicorn, start_serve, stop, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.django_db]

LIMIT = 4096
FIFTY_MIB = 50 * 1024 * 1024
LOGIN = b"POST /api/v2/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"


@pytest.fixture(scope="module", params=["gunicorn", "serve"])
def server(request, django_db_setup, django_db_blocker):
    from tests.realtime.servers import database_url_of_tests

    port = free_port()
    env = child_env(
        DATABASE_URL=database_url_of_tests(),  # the migrated test database, not the developer's
        HOST="127.0.0.1",
        PORT=str(port),
        WEB_CONCURRENCY="1",
        PROMETHEUS_MULTIPROC_DIR=None,
        MAX_REQUEST_BODY_BYTES=str(LIMIT),
        RATELIMIT_ENABLED="false",
        LOG_LEVEL="warning",
    )
    process = start_gunicorn(env) if request.param == "gunicorn" else start_serve(env, port)
    try:
        wait_until(lambda: http_get(f"http://127.0.0.1:{port}/health")[0] == 200, timeout=30)
        yield port
    finally:
        stop(process)


def _answer(sock: socket.socket, timeout: float = 10) -> tuple[int, dict, bool]:
    """Status and JSON body of the response, and whether the server then closed the connection."""
    sock.setblocking(True)
    sock.settimeout(timeout)
    response = http.client.HTTPResponse(sock)
    response.begin()
    body = json.loads(response.read())
    try:
        closed = sock.recv(65536) == b""
    except ConnectionResetError:
        closed = True
    return response.status, body, closed


def test_a_declared_length_past_the_limit_is_refused_before_the_body_is_read(server):
    with socket.create_connection(("127.0.0.1", server), timeout=10) as sock:
        sock.sendall(LOGIN + b"Content-Length: %d\r\n\r\n" % FIFTY_MIB + b'{"email": ')
        started = time.monotonic()
        status, body, closed = _answer(sock)  # the rest never comes: the server must not wait for it
    assert (status, body["code"], bool(body["trace_id"])) == (413, "payload_too_large", True)
    assert time.monotonic() - started < 5
    assert closed  # and it does not stay to read the 50 MiB either


def test_a_chunked_body_is_cut_off_once_past_the_limit(server):
    chunk = b"%x\r\n%s\r\n" % (64 * 1024, b"x" * 64 * 1024)
    sent, pending, answered = 0, b"", False
    with socket.create_connection(("127.0.0.1", server), timeout=10) as sock:
        sock.sendall(LOGIN + b"Transfer-Encoding: chunked\r\n\r\n")
        sock.setblocking(False)
        while sent < FIFTY_MIB:
            readable, writable, _ = select.select([sock], [sock], [], 10)
            if readable:
                answered = True  # the server answered while the body was still coming
                break
            assert writable, "the server neither read on nor answered"
            pending = pending or chunk
            try:
                written = sock.send(pending)
            except (BrokenPipeError, ConnectionResetError):
                answered = True
                break
            sent, pending = sent + written, pending[written:]
        status, body, closed = _answer(sock)
    assert answered and sent < FIFTY_MIB
    assert (status, body["code"], bool(body["trace_id"])) == (413, "payload_too_large", True)
    assert closed


def test_a_chunked_body_within_the_limit_is_processed(server):
    chunks = (part for part in (b'{"email": "nobody@example.com", ', b'"password": "not-the-password"}'))
    connection = http.client.HTTPConnection("127.0.0.1", server, timeout=10)
    try:
        connection.request(
            "POST", "/api/v2/auth/login", body=chunks, headers={"Content-Type": "application/json"}, encode_chunked=True
        )
        response = connection.getresponse()
        payload = json.loads(response.read())
    finally:
        connection.close()
    assert response.status == 401, payload  # parsed and checked: the credentials are wrong
    assert payload["code"] == "invalid_credentials" or payload["code"]


def test_a_body_with_a_length_under_the_limit_is_processed(server):
    body = json.dumps({"email": "nobody@example.com", "password": "not-the-password"}).encode()
    connection = http.client.HTTPConnection("127.0.0.1", server, timeout=10)
    try:
        connection.request("POST", "/api/v2/auth/login", body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        payload = response.read()
        assert response.status == 401, payload  # parsed and checked, not refused for its size
        assert json.loads(payload)["code"]
    finally:
        connection.close()
