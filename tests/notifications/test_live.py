"""Live delivery over the real WebSocket feed: a fired alert reaches every socket of its user, and only those."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async

# The realtime suite's feed fixtures: sockets on the real application, closed and cleaned up after each test.
from tests.realtime.conftest import FeedClient, _release_thread_connections, open_feed  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
async def feeds(open_feed):  # noqa: F811 - the imported fixture, requested by name
    """`await feeds(access_token or None)` -> a FeedClient past its first snapshot (signed in when a token is given)."""
    opened = 0

    async def _open(token: str | None) -> FeedClient:
        nonlocal opened
        feed = await open_feed(client=("127.0.0.1", 50000 + opened))
        opened += 1
        assert feed.accepted
        await feed.receive_type("connected")
        await feed.receive_type("crypto_ticker_update")
        if token:
            await feed.send({"type": "authenticate", "token": token})
            await feed.receive_type("authenticated")
        return feed

    return _open


async def notification_frames(feed: FeedClient, seconds: float = 0.4) -> list[dict]:
    """Every notification frame the socket receives within `seconds` (ticker updates and pings ignored)."""
    frames, deadline = [], time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            frame = await feed.receive(left)
        except TimeoutError:
            break
        if frame["type"] == "notification":
            frames.append(frame)
    return frames


def access_token(user) -> str:
    from tests.factories import tokens_for

    return tokens_for(user)["access_token"]


def listed(user) -> list[dict]:
    from tests.factories import api_client_for

    return api_client_for(user).get("/api/v2/notifications").json()["results"]


async def test_a_fired_alert_reaches_both_sockets_of_its_user_and_no_one_else(feeds, owner, other_user):
    from notifications.tasks import alerts_evaluate
    from tests.notifications.factories import AlertFactory

    await sync_to_async(AlertFactory)(user=owner, symbol="BTC", condition="crosses_above", target_value=Decimal(100))
    laptop = await feeds(await sync_to_async(access_token)(owner))
    phone = await feeds(await sync_to_async(access_token)(owner))
    outsider = await feeds(await sync_to_async(access_token)(other_user))
    anonymous = await feeds(None)

    await sync_to_async(alerts_evaluate.apply)(
        kwargs={
            "quote": "usd",
            "prices": [{"symbol": "BTC", "price": "101", "change_percent_24h": "2"}],
            "previous_prices": {"BTC": "99"},
        }
    )

    stored = await sync_to_async(listed)(owner)
    assert len(stored) == 1
    for feed in (laptop, phone):
        frame = await feed.receive_until("notification")
        assert frame == {"type": "notification", "data": stored[0]}
    assert await notification_frames(outsider) == []
    assert await notification_frames(anonymous, 0.05) == []


async def test_a_user_in_quiet_hours_gets_nothing_live(feeds, owner):
    from notifications.models import NotificationSettings
    from notifications.tasks import alerts_evaluate
    from tests.notifications.factories import AlertFactory

    # Quiet from a minute ago to two minutes from now (the window may wrap midnight; that is supported).
    now = await sync_to_async(_utc_now)()
    start = (now - timedelta(minutes=1)).time().replace(second=0, microsecond=0)
    end = (now + timedelta(minutes=2)).time().replace(second=0, microsecond=0)
    await sync_to_async(NotificationSettings.objects.create)(user=owner, quiet_hours_start=start, quiet_hours_end=end)
    await sync_to_async(AlertFactory)(user=owner, symbol="BTC", condition="above", target_value=Decimal(100))
    phone = await feeds(await sync_to_async(access_token)(owner))

    await sync_to_async(alerts_evaluate.apply)(
        kwargs={"quote": "usd", "prices": [{"symbol": "BTC", "price": "101"}], "previous_prices": {}}
    )

    assert await notification_frames(phone) == []
    assert len(await sync_to_async(listed)(owner)) == 1


def _utc_now():
    from django.utils import timezone

    return timezone.now()


@pytest.mark.postgres
@pytest.mark.redis
async def test_end_to_end_an_ingest_fires_an_alert_through_a_real_celery_worker(feeds, owner, settings):
    """markets ingest -> tickers_changed -> alerts_evaluate.delay on Redis -> worker -> push and mail."""
    from celery.contrib.testing.worker import start_worker
    from django.core import mail

    from coinlink.celery import app
    from notifications.models import NotificationSettings
    from tests.notifications.factories import AlertFactory

    await sync_to_async(_catalogue_and_first_prices)()
    await sync_to_async(NotificationSettings.objects.create)(user=owner, email_enabled=True)
    await sync_to_async(type(owner).objects.filter(pk=owner.pk).update)(is_verified=True)  # mail needs a proven address
    await sync_to_async(AlertFactory)(user=owner, symbol="BTC", condition="crosses_above", target_value=Decimal(70000))
    phone = await feeds(await sync_to_async(access_token)(owner))

    await sync_to_async(app.control.purge)()  # leftovers of earlier runs on this Redis DB
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10, loglevel="WARNING"):
        await sync_to_async(_ingest)({"BTC": "70500"})
        frame = await phone.receive_until("notification", timeout=15)
        deadline = time.monotonic() + 15
        while not mail.outbox and time.monotonic() < deadline:
            await asyncio.sleep(0.1)

    assert frame["data"]["type"] == "price_alert"
    assert frame["data"]["data"]["price"] == 70500.0
    assert frame["data"]["data"]["previous_price"] == 69000.0
    assert [m.to for m in mail.outbox] == [[owner.email]]


def _catalogue_and_first_prices() -> None:
    from markets.catalogue import catalogue_load

    catalogue_load()
    _ingest({"BTC": "69000"})


def _ingest(prices: dict[str, str]) -> None:
    """A real ingest write (the markets service the poller calls), announcing tickers_changed after commit."""
    from datetime import UTC, datetime

    from markets.providers.validate import TickerRow
    from markets.services import tickers_store

    now = datetime.now(UTC)
    rows = {
        symbol: TickerRow(
            symbol=symbol,
            price=Decimal(price),
            change_24h=Decimal("1.5"),
            change_percent_24h=Decimal("0.5"),
            volume_24h=Decimal("1000000"),
            market_cap=Decimal("5000000000"),
            bid=None,
            ask=None,
            last_updated=now,
            source="coingecko",
        )
        for symbol, price in prices.items()
    }
    tickers_store(quote="usd", rows=rows, observed_at=time.time())


def test_embedded_an_ingest_write_fires_alerts_in_process(owner, settings):
    """Without Redis, Celery runs alerts_evaluate in the ingest's process right after its commit."""
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        pytest.skip("with a broker this path is the worker end-to-end test above")
    from notifications.models import Notification
    from tests.notifications.factories import AlertFactory

    _catalogue_and_first_prices()
    AlertFactory(user=owner, symbol="BTC", condition="crosses_above", target_value=Decimal(70000))

    _ingest({"BTC": "70500"})

    note = Notification.objects.get(user=owner)
    assert note.data["price"] == 70500.0 and note.data["previous_price"] == 69000.0
