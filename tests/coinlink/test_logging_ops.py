"""Structured logs: one JSON line per request with ids and user, and never a secret in a log line."""

from __future__ import annotations

import io
import json
import logging

import pytest
from django.test import Client

from coinlink.logging import JsonFormatter, RequestContextFilter, TextFormatter, safe_message, scrub

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.coinlink.ops_urls")]

SECRETS = ("pw-secret-7f3a", "hdr-token-91bc", "cookie-val-55de", "api-key-0c0c")
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture
def json_log():
    """The production formatter and filter on the root logger, writing into a buffer."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestContextFilter())
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(previous)


def _lines(stream) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def _access(stream) -> list[dict]:
    return [line for line in _lines(stream) if line["logger"] == "coinlink.access"]


def test_it_logs_one_json_line_per_request_with_ids_and_timing(client, json_log):
    client.get(
        "/api/v2/nowhere",
        HTTP_X_REQUEST_ID="req-log-1",
        HTTP_TRACEPARENT=f"00-{TRACE}-00f067aa0ba902b7-01",
    )
    (line,) = _access(json_log)
    assert line["request_id"] == "req-log-1"
    assert line["trace_id"] == TRACE
    assert line["method"] == "GET" and line["path"] == "/api/v2/nowhere" and line["status"] == 404
    assert line["level"] == "info" and line["time"].endswith("+00:00")
    assert isinstance(line["duration_ms"], float)
    assert "user_id" not in line  # anonymous


def test_it_uses_the_request_id_as_trace_id_without_a_traceparent(client, json_log):
    client.get("/api/v2/nowhere", HTTP_X_REQUEST_ID="req-log-2", HTTP_TRACEPARENT="garbage")
    (line,) = _access(json_log)
    assert line["trace_id"] == "req-log-2"


def test_it_fills_the_user_id_for_a_jwt_authenticated_drf_request(owner, owner_client, json_log):
    response = owner_client.get("/api/ops-test/whoami")
    assert response.status_code == 200
    (line,) = _access(json_log)
    assert line["user_id"] == str(owner.pk)
    assert line["status"] == 200
    # Lines the view itself writes carry the user too, and the same request id.
    (inside,) = [line for line in _lines(json_log) if line["message"] == "whoami called"]
    assert inside["user_id"] == str(owner.pk) and inside["request_id"] == line["request_id"]


def test_it_logs_no_password_token_header_or_cookie_even_from_careless_code(json_log):
    client = Client()
    client.cookies["sessionid"] = SECRETS[2]
    response = client.post(
        "/api/ops-test/login",
        data=json.dumps({"email": "a@example.com", "password": SECRETS[0]}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {SECRETS[1]}",
        HTTP_X_API_KEY=SECRETS[3],
    )
    assert response.status_code == 200
    output = json_log.getvalue()
    assert "login attempt" in output and "a@example.com" in output  # the lines were written
    for secret in SECRETS:
        assert secret not in output


def test_it_keeps_secrets_out_of_logged_tracebacks(json_log):
    client = Client(raise_request_exception=False)
    response = client.post(
        "/api/ops-test/boom",
        data=json.dumps({"email": "a@example.com", "password": SECRETS[0]}),
        content_type="application/json",
    )
    assert response.status_code == 500
    assert response.json()["code"] == "server_error"
    output = json_log.getvalue()
    assert "RuntimeError" in output
    assert SECRETS[0] not in output


def test_it_redacts_jwts_wherever_they_appear():
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyX2lkIjoxfQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
    assert jwt not in scrub(f"refresh failed for {jwt}")
    assert scrub({"refresh_token": "x", "nested": [{"Authorization": "Bearer y"}]}) == {
        "refresh_token": "[redacted]",
        "nested": [{"Authorization": "[redacted]"}],
    }


def test_it_redacts_secret_pairs_in_formatted_strings_once():
    record = logging.LogRecord("x", logging.INFO, "", 0, "body %s", ("{'password': 'hunter2', 'a': 1}",), None)
    assert safe_message(record) == "body {'password': [redacted], 'a': 1}"
    assert scrub("GET /cb?code=1&api_key=abc&x=2") == "GET /cb?code=1&api_key=[redacted]&x=2"


def test_the_text_format_is_readable_and_redacted():
    record = logging.LogRecord("coinlink.access", logging.INFO, "", 0, "POST %s", ("/api/v2/auth/login",), None)
    record.request_id = "r-1"
    record.headers = {"Authorization": "Bearer abc"}
    line = TextFormatter().format(record)
    assert "INFO" in line and "POST /api/v2/auth/login" in line and "request_id=r-1" in line
    assert "abc" not in line


def test_signup_login_refresh_and_logout_leave_no_secret_in_the_logs(json_log):
    client = Client()
    password = "Tr0ub4dor&3-horse-battery"
    signup = client.post(
        "/api/v2/auth/signup",
        data=json.dumps({"email": "new.user@example.com", "password": password}),
        content_type="application/json",
    )
    assert signup.status_code == 201, signup.content
    wrong = client.post(
        "/api/v2/auth/login",
        data=json.dumps({"email": "new.user@example.com", "password": password + "x"}),
        content_type="application/json",
    )
    assert wrong.status_code == 401
    login = client.post(
        "/api/v2/auth/login",
        data=json.dumps({"email": "new.user@example.com", "password": password}),
        content_type="application/json",
    )
    tokens = login.json()["tokens"]
    refreshed = client.post(
        "/api/v2/auth/refresh",
        data=json.dumps({"refresh_token": tokens["refresh_token"]}),
        content_type="application/json",
    ).json()["tokens"]
    logout = client.post(
        "/api/v2/auth/logout",
        data=json.dumps({"refresh_token": refreshed["refresh_token"]}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {refreshed['access_token']}",
    )
    assert logout.status_code == 204
    output = json_log.getvalue()
    assert len(_access(json_log)) == 5  # every request was logged ...
    secrets = [password, tokens["access_token"], tokens["refresh_token"], refreshed["access_token"]]
    for secret in [*secrets, refreshed["refresh_token"]]:
        assert secret not in output  # ... and nothing secret was


def test_no_price_yet_is_a_503_logged_at_info_not_an_error(client, json_log):
    from markets.models import Asset

    symbol = Asset.objects.values_list("symbol", flat=True).first()
    assert symbol, "the catalogue loads on migrate"

    response = client.get(f"/api/v2/market/{symbol}/price", HTTP_X_REQUEST_ID="req-no-price")

    assert response.status_code == 503 and response.json()["code"] == "market_data_unavailable"
    lines = _lines(json_log)
    assert [line for line in lines if line["level"] in ("error", "critical")] == []
    (said,) = [line for line in lines if line["logger"] == "coinlink.errors"]
    assert said["level"] == "info" and said["status_code"] == 503 and said["request_id"] == "req-no-price"
    assert said["message"].startswith("market_data_unavailable No price for ")


def test_an_unforeseen_failure_is_still_logged_as_an_error(json_log):
    response = Client(raise_request_exception=False).post(
        "/api/ops-test/boom", data="{}", content_type="application/json"
    )

    assert response.status_code == 500
    (error,) = [line for line in _lines(json_log) if line["level"] == "error"]
    assert error["logger"] == "django.request" and error["status_code"] == 500 and "RuntimeError" in error["exc"]
