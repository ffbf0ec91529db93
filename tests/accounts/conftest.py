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


class Mailbox:
    """What a real SMTP server on loopback received, as parsed messages."""

    def __init__(self):
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd calls it by this name
        import email
        from email import policy

        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list:
        return [m for m in self.messages if m["To"] == address]

    def wait_for(self, address: str, count: int = 1, timeout: float = 20.0) -> list:
        """The first `count` messages to `address`, once they have arrived (a worker sends them)."""
        from tests.coinlink.procs import wait_until

        return wait_until(lambda: self.to(address)[:count] if len(self.to(address)) >= count else None, timeout)

    @staticmethod
    def text(message) -> str:
        return message.get_body(preferencelist=("plain",)).get_content()

    def link(self, message, page: str) -> str:
        """The link to `page` of the SPA in the plain-text part, as the reader would click it."""
        import re

        from django.conf import settings

        found = re.search(rf"{re.escape(settings.FRONTEND_URL)}/{page}\?token=[A-Za-z0-9_-]+", self.text(message))
        assert found, self.text(message)
        return found.group(0)


@pytest.fixture
def mailbox(settings):
    """An aiosmtpd server on a free port; Django's SMTP backend sends every mail to it."""
    from aiosmtpd.controller import Controller

    from tests.coinlink.procs import free_port

    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = "127.0.0.1", controller.port, False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_TIMEOUT = 5
    settings.FRONTEND_URL = "https://app.example.test"
    yield box
    controller.stop()


@pytest.fixture
def worker(transactional_db):
    """A real Celery worker (in-process, solo pool) consuming the Redis broker, as production's does.

    Needs committed rows (transactional_db): the worker reads them on its own connection.
    """
    from celery.contrib.testing.worker import start_worker

    from coinlink.celery import app

    app.control.purge()  # leftovers of earlier tests on this Redis database
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10, loglevel="WARNING"):
        yield
