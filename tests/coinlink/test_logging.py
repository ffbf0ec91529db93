import json
import logging

from coinlink import context
from coinlink.logging import JsonFormatter, RequestContextFilter, TextFormatter, scrub

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyX2lkIjoiYWJjIn0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"


def record(msg, *args, **extra):
    rec = logging.LogRecord("coinlink.test", logging.INFO, __file__, 1, msg, args, None)
    for key, value in extra.items():
        setattr(rec, key, value)
    RequestContextFilter().filter(rec)
    return rec


def test_it_redacts_secret_keys_bearer_tokens_and_jwts():
    cleaned = scrub({"password": "hunter2hunter2", "nested": {"refresh_token": "x"}, "note": f"Bearer {TOKEN}"})
    assert cleaned["password"] == "[redacted]"
    assert cleaned["nested"]["refresh_token"] == "[redacted]"
    assert TOKEN not in cleaned["note"]


def test_a_json_line_carries_the_request_context_and_no_secret():
    token = context.request_id.set("req-123")
    try:
        line = JsonFormatter().format(record("login for %s", f"Bearer {TOKEN}", status=200, password="pw-secret-1"))
    finally:
        context.request_id.reset(token)
    payload = json.loads(line)
    assert payload["request_id"] == "req-123"
    assert payload["status"] == 200
    assert payload["level"] == "info"
    assert TOKEN not in line and "pw-secret-1" not in line


def test_the_text_format_is_one_readable_line():
    line = TextFormatter().format(record("hello %s", "world", status=201))
    assert "hello world" in line and "status=201" in line
    assert "\n" not in line


def test_one_access_log_line_per_request_with_the_request_id(client, caplog, db):
    with caplog.at_level(logging.INFO, logger="coinlink.access"):
        response = client.get("/api/v2/nowhere", HTTP_X_REQUEST_ID="trace-me-1")
    lines = [r for r in caplog.records if r.name == "coinlink.access"]
    assert len(lines) == 1
    assert lines[0].request_id == "trace-me-1"
    assert lines[0].status == 404
    assert lines[0].method == "GET"
    assert lines[0].duration_ms >= 0
    assert response["X-Request-ID"] == "trace-me-1"


def test_the_trace_id_comes_from_a_w3c_traceparent(client, caplog, db):
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    with caplog.at_level(logging.INFO, logger="coinlink.access"):
        client.get("/api/v2/nowhere", HTTP_TRACEPARENT=traceparent)
    line = next(r for r in caplog.records if r.name == "coinlink.access")
    assert line.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
