"""A password reset closes every open WebSocket of the user (4001), not only their HTTP tokens."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

# The realtime suite's feed fixtures: sockets on the real application, closed and cleaned up after each test.
from tests.realtime.conftest import _release_thread_connections, open_feed  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


async def signed_in_feed(open_feed, user, port: int):  # noqa: F811 - the imported fixture, passed in
    from tests.factories import tokens_for

    feed = await open_feed(client=("127.0.0.1", port))
    await feed.receive_type("connected")
    await feed.receive_type("crypto_ticker_update")
    await feed.send({"type": "authenticate", "token": (await sync_to_async(tokens_for)(user))["access_token"]})
    await feed.receive_type("authenticated")
    return feed


@pytest.mark.redis
async def test_a_reset_closes_every_open_socket_of_the_user_with_4001(open_feed, owner, other_user):  # noqa: F811
    from accounts import onetime, recovery

    phone, laptop = await signed_in_feed(open_feed, owner, 50001), await signed_in_feed(open_feed, owner, 50002)
    bystander = await signed_in_feed(open_feed, other_user, 50003)
    token = await sync_to_async(onetime.token_issue)(
        user=owner, purpose="password_reset", email=owner.email, ttl_seconds=60
    )

    await sync_to_async(recovery.password_reset_confirm)(token=token, new_password="lantern meadow quarry 7")

    assert await phone.closed_code(timeout=5) == 4001
    assert await laptop.closed_code(timeout=5) == 4001
    await bystander.send({"type": "ping"})
    assert (await bystander.receive_type("pong"))["type"] == "pong"
