"""Fixtures for the accounts tests: a way to run what commits schedule, and signal recorders."""

from __future__ import annotations

import pytest


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """`with committed():` runs the on-commit hooks of what happens inside (revocation, announcements),
    as they would run when a real request's transaction commits."""

    def run():
        return django_capture_on_commit_callbacks(execute=True)

    return run


@pytest.fixture
def revoked_events():
    """Every `sessions_revoked` sent during the test."""
    from accounts.signals import sessions_revoked

    events: list[dict] = []

    def record(sender, **kwargs):
        events.append(kwargs)

    sessions_revoked.connect(record, dispatch_uid="tests.revoked_events")
    yield events
    sessions_revoked.disconnect(dispatch_uid="tests.revoked_events")


@pytest.fixture
def sign_in_events():
    """Every `user_signed_in` sent during the test."""
    from accounts.signals import user_signed_in

    events: list[dict] = []

    def record(sender, **kwargs):
        events.append(kwargs)

    user_signed_in.connect(record, dispatch_uid="tests.sign_in_events")
    yield events
    user_signed_in.disconnect(dispatch_uid="tests.sign_in_events")


def bearer(client, access_token: str):
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token}")
    return client
