"""Rate limits on the auth endpoints: per IP, per account, per session; 429 + Retry-After; fail closed."""

import pytest
from django.test import override_settings
from prometheus_client import REGISTRY

from tests.accounts.test_sessions import CACHE_DOWN
from tests.factories import tokens_for

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _one_window(monkeypatch):
    """All requests of a test fall in one rate-limit window (no flaky reset at a minute boundary)."""
    import django_ratelimit.core

    monkeypatch.setattr(django_ratelimit.core.time, "time", lambda: 1_800_000_000.0)


def auth_attempts(action: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("coinlink_auth_attempts_total", {"action": action, "outcome": outcome}) or 0.0


def signup(client, n: int, ip: str = "198.51.100.1"):
    return client.post(
        "/api/v2/auth/signup",
        {"email": f"user{n}@example.com", "password": "plum orchard velvet 42"},
        format="json",
        REMOTE_ADDR=ip,
    )


def login(client, email="owner@example.com", ip="198.51.100.1", password="wrong password here"):  # noqa: S107
    return client.post("/api/v2/auth/login", {"email": email, "password": password}, format="json", REMOTE_ADDR=ip)


def assert_limited(response):
    assert response.status_code == 429
    assert response.json()["code"] == "rate_limited"
    assert response.json()["trace_id"]
    assert int(response["Retry-After"]) >= 1


def test_signup_allows_five_per_minute_per_ip(anon_client):
    assert [signup(anon_client, n).status_code for n in range(5)] == [201] * 5

    assert_limited(signup(anon_client, 5))
    assert signup(anon_client, 6, ip="198.51.100.2").status_code == 201


def test_login_allows_ten_per_minute_per_ip(anon_client, owner):
    before = auth_attempts("login", "rate_limited")
    for n in range(10):
        assert login(anon_client, email=f"someone{n}@example.com").status_code == 401

    assert_limited(login(anon_client, password="correct horse battery staple"))
    assert auth_attempts("login", "rate_limited") == before + 1


def test_login_allows_ten_per_minute_per_account_from_any_ip(anon_client, owner):
    for n in range(10):
        assert login(anon_client, ip=f"203.0.113.{n}").status_code == 401

    assert_limited(login(anon_client, email="OWNER@example.com", ip="192.0.2.200"))
    assert login(anon_client, email="other@example.com", ip="192.0.2.201").status_code == 401


@pytest.mark.parametrize(
    "spelling",
    [
        "\uff4f\uff57\uff4e\uff45\uff52@example.com",  # full-width
        "\U0001d698\U0001d6a0\U0001d697\U0001d68e\U0001d69b@example.com",  # mathematical monospace
        "owner@\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45\uff0e\uff43\uff4f\uff4d",  # full-width domain
        "\u3000Owner@Example.COM\u00a0",
    ],
)
def test_a_look_alike_email_meets_the_accounts_locked_sign_in_limit(anon_client, owner, spelling):
    for n in range(10):
        login(anon_client, ip=f"203.0.113.{n}")

    assert_limited(login(anon_client, email=spelling, ip="192.0.2.50", password="correct horse battery staple"))


def test_the_right_password_does_not_skip_the_account_limit(anon_client, owner):
    for n in range(10):
        login(anon_client, ip=f"203.0.113.{n}")

    assert_limited(login(anon_client, ip="192.0.2.1", password="correct horse battery staple"))


def test_refresh_allows_twenty_per_minute_per_session(anon_client, owner):
    current = tokens_for(owner)["refresh_token"]
    for _ in range(20):
        response = anon_client.post("/api/v2/auth/refresh", {"refresh_token": current}, format="json")
        assert response.status_code == 200
        current = response.json()["tokens"]["refresh_token"]

    assert_limited(anon_client.post("/api/v2/auth/refresh", {"refresh_token": current}, format="json"))
    other = tokens_for(owner)["refresh_token"]
    assert anon_client.post("/api/v2/auth/refresh", {"refresh_token": other}, format="json").status_code == 200


def test_password_changes_are_limited_per_user(owner_client):
    for _ in range(10):
        body = {"old_password": "not my password", "new_password": "a brand new passphrase"}
        assert owner_client.post("/api/v2/auth/password", body, format="json").status_code == 400

    assert_limited(owner_client.post("/api/v2/auth/password", body, format="json"))


def test_the_limits_count_the_real_client_behind_a_trusted_proxy(anon_client, owner, settings):
    import ipaddress

    settings.TRUSTED_PROXIES = (ipaddress.ip_network("10.0.0.0/8"),)
    for n in range(10):
        anon_client.post(
            "/api/v2/auth/login",
            {"email": f"someone{n}@example.com", "password": "wrong password here"},
            format="json",
            REMOTE_ADDR="10.0.0.2",
            HTTP_X_FORWARDED_FOR=f"198.51.100.{n}",
        )

    response = login(anon_client, email="fresh@example.com", ip="10.0.0.2")
    assert response.status_code == 401  # ten different clients behind one proxy, none over its limit


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v2/auth/login", {"email": "owner@example.com", "password": "correct horse battery staple"}),
        ("/api/v2/auth/signup", {"email": "new@example.com", "password": "plum orchard velvet 42"}),
        ("/api/v2/auth/password/reset", {"email": "owner@example.com"}),
        ("/api/v2/auth/password/reset/confirm", {"token": "A" * 43, "new_password": "plum orchard velvet 42"}),
        ("/api/v2/auth/email/verify", {"token": "A" * 43}),
        ("/api/v2/user/email/confirm", {"token": "A" * 43}),
    ],
)
def test_auth_limits_fail_closed_when_the_cache_is_down(anon_client, owner, path, body):
    with override_settings(CACHES=CACHE_DOWN):
        response = anon_client.post(path, body, format="json")

    assert response.status_code == 503
    assert response.json()["code"] == "service_unavailable"
    assert response["Retry-After"]


def test_auth_outcomes_are_counted(anon_client, owner):
    success, failure = auth_attempts("login", "success"), auth_attempts("login", "failure")

    login(anon_client, password="correct horse battery staple")
    login(anon_client)

    assert auth_attempts("login", "success") == success + 1
    assert auth_attempts("login", "failure") == failure + 1
