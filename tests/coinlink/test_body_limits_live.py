"""Body limits through a real gunicorn: declared lengths past the limit are 413 before the body is read;
chunked bodies (which Django cannot size-check) are refused with 411."""

from __future__ import annotations

import http.client
import json

import pytest

from tests.coinlink.procs import gunicorn_on_test_database

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.django_db]


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker):
    with gunicorn_on_test_database(MAX_REQUEST_BODY_BYTES="4096", RATELIMIT_ENABLED="false") as port:
        yield port


def _post(port: int, chunks, headers: dict) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("POST", "/api/v2/auth/login", body=chunks, headers=headers, encode_chunked=True)
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        connection.close()


def test_a_chunked_body_is_refused_with_411_before_it_is_read(server):
    chunks = (b'{"email": "a@example.com", "password": "' + b"x" * 1024 for _ in range(64))
    status, body = _post(server, chunks, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
    assert status == 411
    assert body["code"] == "length_required" and body["trace_id"]


def test_a_declared_length_past_the_limit_is_refused_before_reading(server):
    connection = http.client.HTTPConnection("127.0.0.1", server, timeout=10)
    try:
        connection.putrequest("POST", "/api/v2/auth/login")
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str(50 * 1024 * 1024))
        connection.endheaders()
        connection.send(b'{"email": ')  # the rest never comes: the server must not wait for 50 MB
        response = connection.getresponse()
        assert response.status == 413
        assert json.loads(response.read())["code"] == "payload_too_large"
    finally:
        connection.close()


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
