"""The embedded default, as `scripts/run` serves it with nothing configured: SQLite, no Redis.

The signed-in calls' hot queries are prepared statements (coinlink.db.prepared) whose parameters
take the form each backend gives them; on SQLite a UUID travels as 32 hex digits. Every other test
of the SPA's calls runs on PostgreSQL, so this one walks the SPA through the real one-machine
server on SQLite: sign-up, sign-in from a second device, the inbox, alerts, preferences, sign-out.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.coinlink.procs import PYTHON, ROOT, child_env, free_port, http_fetch, start_serve, stop, wait_until

PASSWORD = "correct horse battery staple 9"


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    """`manage.py serve` on a migrated SQLite file, without Redis; yields its base URL."""
    database = tmp_path_factory.mktemp("embedded") / "db.sqlite3"
    env = child_env(
        DATABASE_URL=f"sqlite:///{database}",
        REDIS_URL=None,
        DJANGO_SETTINGS_MODULE=None,
        COINLINK_ENV=None,
        MARKET_STREAM_ENABLED="false",
        LOG_LEVEL="warning",
    )
    subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True, timeout=120)
    port = free_port()
    process = start_serve(env, port)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: call("GET", f"{base}/health")[0] == 200, timeout=30)
        yield base
    finally:
        stop(process)


def call(method: str, url: str, body: dict | None = None, token: str | None = None, agent: str = "spa-test/1"):
    headers = {"Content-Type": "application/json", "User-Agent": agent}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    status, _, raw = http_fetch(url, headers, timeout=10, data=data, method=method)
    return status, json.loads(raw) if raw else None


def test_the_spa_signs_in_and_uses_every_signed_in_call_on_sqlite(embedded):
    api = f"{embedded}/api/v2"
    status, signup = call("POST", f"{api}/auth/signup", {"email": "embedded@example.com", "password": PASSWORD})
    assert status == 201, signup
    # A sign-in from another device stores a security_alert: something in the inbox to read.
    status, login = call(
        "POST", f"{api}/auth/login", {"email": "embedded@example.com", "password": PASSWORD}, agent="other-device/2"
    )
    assert status == 200, login
    token = login["tokens"]["access_token"]

    status, profile = call("GET", f"{api}/user/profile", token=token)
    assert (status, profile["email"]) == (200, "embedded@example.com")
    assert call("GET", f"{api}/auth/verify", token=token)[0] == 200
    status, preferences = call("PATCH", f"{api}/user/preferences", {"theme": "light"}, token=token)
    assert (status, preferences["theme"]) == (200, "light")
    assert call("GET", f"{api}/user/preferences", token=token)[1]["theme"] == "light"

    unread = wait_until(lambda: call("GET", f"{api}/notifications/unread-count", token=token)[1]["count"], timeout=15)
    status, inbox = call("GET", f"{api}/notifications", token=token)
    assert status == 200 and inbox["count"] == unread
    first = inbox["results"][0]
    assert first["type"] == "security_alert" and first["is_read"] is False
    status, read = call("POST", f"{api}/notifications/{first['id']}/read", token=token)
    assert (status, read["is_read"]) == (200, True)
    assert call("GET", f"{api}/notifications/unread-count", token=token)[1]["count"] == unread - 1
    assert call("DELETE", f"{api}/notifications/{first['id']}", token=token)[0] == 204

    status, alert = call(
        "POST", f"{api}/alerts", {"symbol": "BTC", "condition": "above", "target_value": "100000"}, token=token
    )
    assert status == 201, alert
    status, alerts = call("GET", f"{api}/alerts", token=token)
    assert (status, [a["id"] for a in alerts["results"]]) == (200, [alert["id"]])
    assert call("GET", f"{api}/alerts/{alert['id']}", token=token)[1]["target_value"] == alert["target_value"]
    assert call("DELETE", f"{api}/alerts/{alert['id']}", token=token)[0] == 204
    assert call("GET", f"{api}/alerts/{alert['id']}", token=token)[0] == 404

    sign_out = {"refresh_token": login["tokens"]["refresh_token"]}
    assert call("POST", f"{api}/auth/logout", sign_out, token=token)[0] == 204
    status, refused = call("GET", f"{api}/notifications/unread-count", token=token)
    assert (status, refused["code"]) == (401, "session_revoked")  # at once, as on PostgreSQL


def test_another_users_rows_stay_out_of_reach_on_sqlite(embedded):
    api = f"{embedded}/api/v2"
    tokens = []
    for email in ("mine@example.com", "theirs@example.com"):
        status, body = call("POST", f"{api}/auth/signup", {"email": email, "password": PASSWORD})
        assert status == 201, body
        tokens.append(body["tokens"]["access_token"])
    mine, theirs = tokens
    status, alert = call(
        "POST", f"{api}/alerts", {"symbol": "ETH", "condition": "below", "target_value": "1000"}, token=mine
    )
    assert status == 201, alert

    assert call("GET", f"{api}/alerts/{alert['id']}", token=theirs)[0] == 404
    assert call("DELETE", f"{api}/alerts/{alert['id']}", token=theirs)[0] == 404
    assert call("GET", f"{api}/alerts", token=theirs)[1]["count"] == 0
    assert call("GET", f"{api}/alerts/{alert['id']}", token=mine)[0] == 200
