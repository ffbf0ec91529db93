"""Sentry never receives a password, token, Authorization header or cookie: a real SDK in a child
process reports a crashing request to a fake Sentry (HTTP on loopback) and we read what arrived."""

from __future__ import annotations

import gzip
import json
import subprocess
import textwrap
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from coinlink.observability import _before_send
from tests.coinlink.procs import PYTHON, ROOT, child_env

SECRETS = {
    "password": "pw-secret-5e11",
    "bearer": "hdr-token-a7a7",
    "cookie": "cookie-val-c0c0",
    "query": "qs-token-9d9d",
    "apikey": "api-key-e4e4",
}

_CHILD = textwrap.dedent(
    """
    import json, os
    import django
    django.setup()
    import sentry_sdk
    from django.test import Client
    from django.test.utils import override_settings

    secrets = json.loads(os.environ["OPS_TEST_SECRETS"])
    with override_settings(ROOT_URLCONF="tests.coinlink.ops_urls"):
        client = Client(raise_request_exception=False)
        client.cookies["sessionid"] = secrets["cookie"]
        response = client.post(
            "/api/ops-test/boom?access_token=" + secrets["query"],
            data=json.dumps({"email": "a@example.com", "password": secrets["password"]}),
            content_type="application/json",
            HTTP_AUTHORIZATION="Bearer " + secrets["bearer"],
            HTTP_X_API_KEY=secrets["apikey"],
        )
        assert response.status_code == 500, response.status_code
    sentry_sdk.flush(10)
    """
)


class _FakeSentry(BaseHTTPRequestHandler):
    received: list[bytes] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        encoding = self.headers.get("Content-Encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        elif encoding == "br":
            import brotli

            body = brotli.decompress(body)
        self.received.append(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_sentry():
    _FakeSentry.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeSentry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], _FakeSentry.received
    server.shutdown()


def test_it_reports_a_crash_to_sentry_without_any_secret(fake_sentry):
    port, received = fake_sentry
    result = subprocess.run(
        [PYTHON, "-c", _CHILD],
        cwd=ROOT,
        # Secrets go in through the environment: Sentry reports sys.argv, which is not what we test.
        env=child_env(
            SENTRY_DSN=f"http://publickey@127.0.0.1:{port}/42",
            DJANGO_SETTINGS_MODULE="coinlink.settings",
            OPS_TEST_SECRETS=json.dumps(SECRETS),
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    payload = b"\n".join(received).decode("utf-8", "replace")
    assert "RuntimeError" in payload and "/api/ops-test/boom" in payload  # the event did arrive
    for name, secret in SECRETS.items():
        assert secret not in payload, name


def test_before_send_redacts_request_parts_messages_and_breadcrumbs():
    event = {
        "request": {
            "headers": {"Authorization": "Bearer abc", "Cookie": "sessionid=1", "X-Api-Key": "k", "Accept": "*/*"},
            "cookies": {"sessionid": "1"},
            "data": {"password": "p", "email": "e@example.com"},
            "query_string": "refresh_token=t&page=2",
        },
        "exception": {"values": [{"type": "ValueError", "value": "bad {'password': 'p'}"}]},
        "logentry": {"message": "login %s", "formatted": "login password=p"},
        "breadcrumbs": {"values": [{"message": "POST", "data": {"token": "t"}}]},
        "extra": {"api_key": "k"},
    }
    scrubbed = json.dumps(_before_send(event, {}))
    for value in ("Bearer abc", "sessionid=1", '"k"', "password': 'p'", "password=p", '"t"', "refresh_token=t"):
        assert value not in scrubbed, value
    assert "e@example.com" in scrubbed and "*/*" in scrubbed and "page=2" in scrubbed
