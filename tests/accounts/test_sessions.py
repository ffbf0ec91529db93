"""Sessions: immediate revocation, the query-free hot path, concurrency, listing, purge."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.test import APIClient, APIRequestFactory

from accounts import services
from accounts.authentication import SessionJWTAuthentication
from accounts.exceptions import InvalidToken, TokenReused
from accounts.models import Session
from accounts.selectors import access_token_user, session_is_active
from tests.accounts.conftest import bearer
from tests.factories import tokens_for

pytestmark = pytest.mark.django_db

VERIFY = "/api/v2/auth/verify"
CACHE_DOWN = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
    }
}


def client_with(access_token: str) -> APIClient:
    return bearer(APIClient(), access_token)


def works(tokens: dict) -> bool:
    return client_with(tokens["access_token"]).get(VERIFY).status_code == 200


# --- immediate revocation ----------------------------------------------------------------------


def test_logout_kills_the_access_and_refresh_token_on_the_next_request(owner, committed):
    current, other = tokens_for(owner), tokens_for(owner)
    client = client_with(current["access_token"])

    with committed():
        response = client.post("/api/v2/auth/logout", {"refresh_token": current["refresh_token"]}, format="json")

    assert response.status_code == 204
    refused = client.get(VERIFY)
    assert refused.status_code == 401
    assert refused.json()["code"] == "session_revoked"
    assert (
        APIClient().post("/api/v2/auth/refresh", {"refresh_token": current["refresh_token"]}, format="json").status_code
        == 401
    )
    assert works(other)


def test_logout_also_ends_the_session_of_the_refresh_token_sent(owner, committed):
    current, second = tokens_for(owner), tokens_for(owner)

    with committed():
        client_with(current["access_token"]).post(
            "/api/v2/auth/logout", {"refresh_token": second["refresh_token"]}, format="json"
        )

    assert not works(current) and not works(second)


def test_logout_ignores_another_users_refresh_token(owner, other_user, committed):
    mine, theirs = tokens_for(owner), tokens_for(other_user)

    with committed():
        client_with(mine["access_token"]).post(
            "/api/v2/auth/logout", {"refresh_token": theirs["refresh_token"]}, format="json"
        )

    assert not works(mine)
    assert works(theirs)


def test_logout_needs_a_bearer_token_and_a_refresh_token(owner, anon_client):
    tokens = tokens_for(owner)

    assert (
        anon_client.post("/api/v2/auth/logout", {"refresh_token": tokens["refresh_token"]}, format="json").status_code
        == 401
    )
    assert client_with(tokens["access_token"]).post("/api/v2/auth/logout", {}, format="json").status_code == 400
    assert works(tokens)


def test_logout_all_ends_every_session(owner, other_user, committed, revoked_events):
    sessions = [tokens_for(owner) for _ in range(3)]
    theirs = tokens_for(other_user)

    with committed():
        response = client_with(sessions[0]["access_token"]).post("/api/v2/auth/logout-all")

    assert response.status_code == 204
    assert not any(works(t) for t in sessions)
    assert works(theirs)
    assert len(revoked_events) == 1
    assert revoked_events[0]["reason"] == "logout_all"
    assert sorted(revoked_events[0]["session_ids"]) == sorted(t["session_id"] for t in sessions)


def test_revocation_is_announced_only_after_the_commit(owner, revoked_events):
    tokens = tokens_for(owner)

    client_with(tokens["access_token"]).post("/api/v2/auth/logout-all")  # the test transaction never commits

    assert revoked_events == []


def test_deleting_a_session_revokes_it(owner, owner_client, committed, revoked_events):
    phone = tokens_for(owner, user_agent="Phone/1")

    with committed():
        response = owner_client.delete(f"/api/v2/user/sessions/{phone['session_id']}")

    assert response.status_code == 204
    assert not works(phone)
    assert owner_client.get(VERIFY).status_code == 200
    assert revoked_events[0]["session_ids"] == [phone["session_id"]]
    assert revoked_events[0]["reason"] == "session_deleted"


def test_another_users_session_is_a_404_and_stays_alive(other_user, owner_client):
    theirs = tokens_for(other_user)

    response = owner_client.delete(f"/api/v2/user/sessions/{theirs['session_id']}")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert works(theirs)


@pytest.mark.parametrize("path", ["not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_unknown_session_ids_are_404(owner_client, path):
    assert owner_client.delete(f"/api/v2/user/sessions/{path}").status_code == 404


def test_deleting_an_ended_session_is_a_404(owner, owner_client, committed):
    phone = tokens_for(owner)
    with committed():
        owner_client.delete(f"/api/v2/user/sessions/{phone['session_id']}")

    assert owner_client.delete(f"/api/v2/user/sessions/{phone['session_id']}").status_code == 404


def test_an_expired_session_is_refused_even_with_a_live_access_token(owner):
    tokens = tokens_for(owner)
    Session.objects.filter(pk=tokens["session_id"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    from django.core.cache import cache

    cache.clear()  # the cache learns expiry from the database when its entry lapses

    assert not works(tokens)


# --- the hot path ------------------------------------------------------------------------------


def test_checking_a_session_costs_no_query(owner, committed, django_assert_num_queries):
    live, ended = tokens_for(owner), tokens_for(owner)
    with committed():
        services.sessions_revoke(user_id=owner.pk, session_ids=[ended["session_id"]], reason="test")

    with django_assert_num_queries(0):
        assert session_is_active(session_id=live["session_id"]) is True
        assert session_is_active(session_id=ended["session_id"]) is False


def test_authenticating_a_request_costs_no_query(owner, django_assert_num_queries):
    tokens = tokens_for(owner)
    request = Request(APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}"))

    with django_assert_num_queries(0):  # the session check is the cache; the live session vouches for the user
        user, token = SessionJWTAuthentication().authenticate(request)

    assert user == owner
    assert token["sid"] == tokens["session_id"]


def test_an_api_read_costs_only_its_own_query(owner, django_assert_num_queries):
    client = client_with(tokens_for(owner)["access_token"])

    with django_assert_num_queries(1):  # COUNT the unread notifications; no user row, no session row
        response = client.get("/api/v2/notifications/unread-count")

    assert response.json() == {"count": 0}


def test_views_that_show_the_user_load_the_whole_row(owner):
    owner.first_name, owner.last_name = "Grace", "Hopper"
    owner.save(update_fields=["first_name", "last_name"])
    client = client_with(tokens_for(owner)["access_token"])

    assert client.get(VERIFY).json()["user"]["email"] == "owner@example.com"
    profile = client.get("/api/v2/user/profile").json()
    assert (profile["email"], profile["first_name"], profile["last_name"]) == ("owner@example.com", "Grace", "Hopper")


def test_deleting_a_user_ends_their_sessions_at_once(owner, committed, revoked_events):
    tokens = tokens_for(owner)
    assert works(tokens)  # the cache now holds the session as active

    with committed():
        owner.delete()

    # An endpoint that never reads the user row: only the session check can refuse it.
    assert client_with(tokens["access_token"]).get("/api/v2/notifications/unread-count").status_code == 401
    assert revoked_events[0]["session_ids"] == [tokens["session_id"]]
    assert revoked_events[0]["reason"] == "user_deleted"


def test_a_session_of_a_user_deactivated_outside_the_admin_ends_when_its_cache_entry_does(owner):
    from django.core.cache import cache

    from accounts.models import User

    tokens = tokens_for(owner)
    User.objects.filter(pk=owner.pk).update(is_active=False)  # no revocation (the admin would revoke)
    cache.clear()  # the entry lapsed (it lives one access-token lifetime)

    assert not works(tokens)
    assert not session_is_active(session_id=tokens["session_id"])


def test_a_cold_cache_asks_the_database_once(owner, django_assert_num_queries):
    from django.core.cache import cache

    tokens = tokens_for(owner)
    cache.clear()

    with django_assert_num_queries(1):
        assert session_is_active(session_id=tokens["session_id"])
    with django_assert_num_queries(0):
        assert session_is_active(session_id=tokens["session_id"])


def test_a_late_active_write_cannot_resurrect_a_revoked_session(owner, committed):
    from accounts import session_cache

    tokens = tokens_for(owner)
    with committed():
        services.sessions_revoke(user_id=owner.pk, reason="test")

    session_cache.active_add(tokens["session_id"], user_id=str(owner.pk))  # e.g. a concurrent refresh finishing late

    assert not session_is_active(session_id=tokens["session_id"])


def test_with_the_cache_down_revocation_still_holds(owner, committed):
    live, ended = tokens_for(owner), tokens_for(owner)
    with committed():
        services.sessions_revoke(user_id=owner.pk, session_ids=[ended["session_id"]], reason="test")

    with override_settings(CACHES=CACHE_DOWN):
        assert works(live)
        assert not works(ended)


@pytest.mark.parametrize("bad", ["", "nope", "0" * 40, None])
def test_garbage_session_ids_are_inactive_without_a_query(bad, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert session_is_active(session_id=bad) is False


# --- the WebSocket side ------------------------------------------------------------------------


def test_access_token_user_returns_the_user_and_session(owner):
    tokens = tokens_for(owner)

    user, session_id = access_token_user(token=tokens["access_token"])

    assert user == owner
    assert session_id == tokens["session_id"]


def test_access_token_user_refuses_bad_expired_and_revoked_tokens(owner, committed):
    tokens = tokens_for(owner)
    for bad in ["", "x.y.z", tokens["refresh_token"], 42]:
        with pytest.raises(InvalidToken):
            access_token_user(token=bad)
    with committed():
        services.user_logout_all(user=owner)
    with pytest.raises(InvalidToken):
        access_token_user(token=tokens["access_token"])


def test_a_token_already_seen_is_refused_once_it_expires(owner, monkeypatch):
    # Verified tokens are kept per process so that the SPA's repeated token is not decoded on every
    # call; its expiry must still be checked on every use.
    tokens = tokens_for(owner)
    assert works(tokens)
    later = timezone.now() + timedelta(days=1)
    monkeypatch.setattr("rest_framework_simplejwt.utils.aware_utcnow", lambda: later)
    monkeypatch.setattr("rest_framework_simplejwt.tokens.aware_utcnow", lambda: later)

    response = client_with(tokens["access_token"]).get(VERIFY)

    assert response.status_code == 401


# --- concurrency -------------------------------------------------------------------------------


def _race(n: int, fn) -> list:
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def run(i):
        try:
            barrier.wait()
            results[i] = fn()
        except Exception as error:
            results[i] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_simultaneous_refreshes_yield_exactly_one_success(owner):
    """Simultaneous refreshes of one token are indistinguishable from theft: one wins, the rest are reuse."""
    tokens = tokens_for(owner)
    bystander = tokens_for(owner)

    results = _race(20, lambda: services.session_refresh(refresh_token=tokens["refresh_token"]))

    successes = [r for r in results if isinstance(r, services.IssuedTokens)]
    failures = [r for r in results if isinstance(r, InvalidToken)]
    assert len(successes) == 1, results
    assert len(failures) == 19, results
    assert any(isinstance(f, TokenReused) for f in failures)
    assert not Session.objects.filter(user=owner, revoked_at=None).exists()
    assert not session_is_active(session_id=bystander["session_id"])
    assert not works(bystander)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_sequential_refreshes_each_succeed_once(owner):
    tokens = tokens_for(owner)
    current = tokens["refresh_token"]
    for _ in range(5):
        current = services.session_refresh(refresh_token=current).refresh_token

    assert Session.objects.get(pk=tokens["session_id"]).revoked_at is None


def test_a_sign_in_beyond_the_session_limit_ends_the_least_recently_used(owner, monkeypatch, committed):
    monkeypatch.setattr(services, "MAX_ACTIVE_SESSIONS", 3)
    oldest, *middle = [tokens_for(owner) for _ in range(3)]
    Session.objects.filter(pk=oldest["session_id"]).update(last_used_at=timezone.now() - timedelta(hours=1))

    with committed():
        newest = tokens_for(owner)

    assert not works(oldest)
    assert all(works(t) for t in [*middle, newest])
    assert Session.objects.get(pk=oldest["session_id"]).revoke_reason == "session_limit"


# --- listing -----------------------------------------------------------------------------------


def test_the_session_list_shows_only_my_live_sessions_and_marks_this_one(owner, other_user, committed):
    mine = tokens_for(owner, user_agent="Firefox/140", ip_address="203.0.113.7")
    ended = tokens_for(owner)
    tokens_for(other_user)
    with committed():
        services.sessions_revoke(user_id=owner.pk, session_ids=[ended["session_id"]], reason="test")

    body = client_with(mine["access_token"]).get("/api/v2/user/sessions").json()

    assert body["count"] == 1
    (session,) = body["results"]
    assert set(session) == {"id", "created_at", "last_used_at", "expires_at", "user_agent", "ip_address", "current"}
    assert session["id"] == mine["session_id"]
    assert session["current"] is True
    assert session["user_agent"] == "Firefox/140"
    assert session["ip_address"] == "203.0.113.7"


def test_other_sessions_are_not_current(owner):
    first, second = tokens_for(owner), tokens_for(owner)

    results = client_with(first["access_token"]).get("/api/v2/user/sessions").json()["results"]

    assert {r["id"]: r["current"] for r in results} == {first["session_id"]: True, second["session_id"]: False}


def test_the_session_list_needs_a_token(anon_client):
    assert anon_client.get("/api/v2/user/sessions").status_code == 401


# --- purge -------------------------------------------------------------------------------------


def test_tokens_purge_deletes_long_ended_sessions_and_expired_tokens_idempotently(owner):
    from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

    from accounts import onetime
    from accounts.tasks import tokens_purge

    pending = onetime.token_issue(user=owner, purpose="email_verify", email=owner.email, ttl_seconds=3600)
    onetime.token_issue(user=owner, purpose="password_reset", email=owner.email, ttl_seconds=3600)
    onetime.token_issue(user=owner, purpose="password_reset", email=owner.email, ttl_seconds=3600)  # voids the first

    old, recent, live = tokens_for(owner), tokens_for(owner), tokens_for(owner)
    long_ago = timezone.now() - timedelta(days=31)
    Session.objects.filter(pk=old["session_id"]).update(expires_at=long_ago)
    Session.objects.filter(pk=recent["session_id"]).update(revoked_at=timezone.now() - timedelta(days=1))
    # Rows an earlier release wrote to simplejwt's tables: the purge drains them (nothing writes them now).
    expired = OutstandingToken.objects.create(user=owner, jti="a" * 32, token="sha256:x", expires_at=long_ago)
    BlacklistedToken.objects.create(token=expired)
    unexpired = OutstandingToken.objects.create(
        user=owner, jti="b" * 32, token="sha256:y", expires_at=timezone.now() + timedelta(days=1)
    )

    assert tokens_purge.apply().get() == {"sessions": 1, "tokens": 1, "account_tokens": 1}
    assert tokens_purge.apply().get() == {"sessions": 0, "tokens": 0, "account_tokens": 0}
    assert onetime.token_claim(token=pending, purpose="email_verify")  # a live mailed token is kept
    assert {str(i) for i in Session.objects.values_list("id", flat=True)} == {recent["session_id"], live["session_id"]}
    assert list(OutstandingToken.objects.all()) == [unexpired]
    assert not BlacklistedToken.objects.exists()
    assert works(live)


def test_the_purge_task_is_registered_under_its_scheduled_name():
    from coinlink.beat_schedule import beat_schedule
    from coinlink.celery import app

    app.loader.import_default_modules()  # what a worker does at start: autodiscovery

    assert beat_schedule()["accounts-purge"]["task"] == "accounts.tasks.tokens_purge"
    assert "accounts.tasks.tokens_purge" in app.tasks
