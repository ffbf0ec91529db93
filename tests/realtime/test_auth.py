"""`authenticate`, per-user notifications, and revoked sessions closing their sockets (4001)."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from realtime import events

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def tokens(owner):
    from tests.factories import tokens_for

    return lambda user=owner: tokens_for(user)


async def _signed_in(open_feed, token: str):
    feed = await open_feed()
    await feed.receive_type("connected")
    await feed.receive_type("crypto_ticker_update")
    await feed.send({"type": "authenticate", "token": token})
    return feed, await feed.receive_type("authenticated")


def _notification(title: str) -> dict:
    return {
        "id": "6f1c1d8e-0000-4000-8000-000000000001",
        "type": "price_alert",
        "title": title,
        "message": "BTC crossed 70,000 USD",
        "priority": "high",
        "is_read": False,
        "created_at": "2026-11-25T15:00:00Z",
        "data": {"symbol": "BTC"},
    }


async def test_it_authenticates_with_an_access_token(open_feed, owner, tokens):
    issued = await sync_to_async(tokens)()
    _, authenticated = await _signed_in(open_feed, issued["access_token"])
    assert authenticated == {"type": "authenticated", "user": {"id": str(owner.pk), "email": "owner@example.com"}}


@pytest.mark.parametrize("token", ["not-a-jwt", "eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl"])
async def test_it_answers_a_bad_token_with_invalid_token_and_stays_open(open_feed, transactional_db, token):
    feed = await open_feed()
    await feed.receive_type("connected")
    await feed.receive_type("crypto_ticker_update")
    await feed.send({"type": "authenticate", "token": token})
    error = await feed.receive_type("error")
    assert error["code"] == "invalid_token"
    await feed.send({"type": "ping"})
    assert (await feed.receive_type("pong"))["type"] == "pong"


async def test_it_answers_an_expired_token_with_invalid_token(open_feed, owner, tokens, settings):
    from datetime import timedelta

    from accounts.tokens import SessionAccessToken

    issued = await sync_to_async(tokens)()
    expired = SessionAccessToken(issued["access_token"])
    expired.set_exp(lifetime=-timedelta(minutes=10))
    feed = await open_feed()
    await feed.receive_type("connected")
    await feed.receive_type("crypto_ticker_update")
    await feed.send({"type": "authenticate", "token": str(expired)})
    assert (await feed.receive_type("error"))["code"] == "invalid_token"


async def test_it_refuses_the_token_of_an_ended_session(open_feed, owner, tokens):
    from accounts.services import user_logout_all

    issued = await sync_to_async(tokens)()
    await sync_to_async(user_logout_all)(user=owner)
    feed = await open_feed()
    await feed.receive_type("connected")
    await feed.receive_type("crypto_ticker_update")
    await feed.send({"type": "authenticate", "token": issued["access_token"]})
    assert (await feed.receive_type("error"))["code"] == "invalid_token"


async def test_it_pushes_a_users_notifications_to_all_their_sockets_and_no_one_elses(
    open_feed, owner, other_user, tokens
):
    first, _ = await _signed_in(open_feed, (await sync_to_async(tokens)())["access_token"])
    second, _ = await _signed_in(open_feed, (await sync_to_async(tokens)())["access_token"])
    outsider, _ = await _signed_in(open_feed, (await sync_to_async(tokens)(other_user))["access_token"])
    anonymous = await open_feed()
    await anonymous.receive_type("connected")
    await anonymous.receive_type("crypto_ticker_update")

    await sync_to_async(events.notification_push)(user_id=str(owner.pk), notification=_notification("BTC alert"))

    for feed in (first, second):
        frame = await feed.receive_type("notification")
        assert frame == {"type": "notification", "data": _notification("BTC alert")}
    assert await outsider.nothing()
    assert await anonymous.nothing(0.05)


@pytest.fixture
def celery_inline():
    """Run Celery tasks in the caller (there is no worker process in the test run)."""
    from coinlink.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


async def test_it_pushes_many_notifications_in_one_call_to_the_right_users(open_feed, owner, other_user, tokens):
    mine, _ = await _signed_in(open_feed, (await sync_to_async(tokens)())["access_token"])
    theirs, _ = await _signed_in(open_feed, (await sync_to_async(tokens)(other_user))["access_token"])
    await sync_to_async(events.notification_push_many)(
        notifications=[
            (str(owner.pk), _notification("first")),
            (str(other_user.pk), _notification("for the other user")),
            (str(owner.pk), _notification("second")),
        ]
    )
    assert [(await mine.receive_type("notification"))["data"]["title"] for _ in range(2)] == ["first", "second"]
    assert (await theirs.receive_type("notification"))["data"]["title"] == "for the other user"
    assert await mine.nothing()


async def test_it_delivers_a_fired_alert_as_a_notification(open_feed, owner, tokens, store_prices, celery_inline):
    """The whole path: ingest -> alert evaluation -> notification -> the owner's socket."""
    from notifications.models import Alert

    await store_prices({"BTC": "60000"})
    await sync_to_async(Alert.objects.create)(
        user=owner, symbol="BTC", condition="above", target_value=65000, quote="usd"
    )
    feed, _ = await _signed_in(open_feed, (await sync_to_async(tokens)())["access_token"])
    await store_prices({"BTC": "66000"})
    frame = await feed.receive_until("notification", timeout=5)
    assert frame["data"]["type"] == "price_alert"
    assert frame["data"]["data"]["symbol"] == "BTC"


async def test_it_closes_sockets_of_a_revoked_session_with_4001(open_feed, owner, tokens):
    from accounts.services import user_session_revoke

    doomed = await sync_to_async(tokens)()
    kept = await sync_to_async(tokens)()
    revoked_feed, _ = await _signed_in(open_feed, doomed["access_token"])
    other_session_feed, _ = await _signed_in(open_feed, kept["access_token"])

    await sync_to_async(user_session_revoke)(user=owner, session_id=doomed["session_id"])

    assert await revoked_feed.closed_code(timeout=3) == 4001
    await other_session_feed.send({"type": "ping"})
    assert (await other_session_feed.receive_type("pong"))["type"] == "pong"


async def test_it_closes_every_socket_of_the_user_on_logout_all(open_feed, owner, tokens):
    from accounts.services import user_logout_all

    feeds = [(await _signed_in(open_feed, (await sync_to_async(tokens)())["access_token"]))[0] for _ in range(2)]
    await sync_to_async(user_logout_all)(user=owner)
    for feed in feeds:
        assert await feed.closed_code(timeout=3) == 4001


async def test_it_rechecks_sessions_even_when_the_revocation_broadcast_is_lost(open_feed, owner, tokens, settings):
    from accounts import signals
    from accounts.services import user_session_revoke
    from coinlink import wiring

    settings.WS_SESSION_RECHECK_SECONDS = 1
    issued = await sync_to_async(tokens)()
    feed, _ = await _signed_in(open_feed, issued["access_token"])
    signals.sessions_revoked.disconnect(dispatch_uid="coinlink.sessions_revoked")
    try:
        await sync_to_async(user_session_revoke)(user=owner, session_id=issued["session_id"])
    finally:
        signals.sessions_revoked.connect(wiring.on_sessions_revoked, dispatch_uid="coinlink.sessions_revoked")
    assert await feed.closed_code(timeout=4) == 4001


async def test_it_counts_authenticated_sockets(open_feed, owner, tokens):
    from coinlink import metrics

    before = metrics.WS_AUTHENTICATED._value.get()
    feed, _ = await _signed_in(open_feed, (await sync_to_async(tokens)())["access_token"])
    assert metrics.WS_AUTHENTICATED._value.get() == before + 1
    await feed.close()
    assert metrics.WS_AUTHENTICATED._value.get() == before


async def test_it_answers_a_token_naming_another_users_session_with_invalid_token(open_feed, owner, other_user, tokens):
    from accounts.tokens import SessionAccessToken

    mine, theirs = await sync_to_async(tokens)(), await sync_to_async(tokens)(other_user)
    forged = SessionAccessToken(mine["access_token"])
    forged["sid"] = theirs["session_id"]
    feed = await open_feed()
    await feed.receive_type("connected")
    await feed.receive_type("crypto_ticker_update")

    await feed.send({"type": "authenticate", "token": str(forged)})

    assert (await feed.receive_type("error"))["code"] == "invalid_token"
    await feed.send({"type": "authenticate", "token": theirs["access_token"]})
    assert (await feed.receive_type("authenticated"))["user"]["id"] == str(other_user.pk)
