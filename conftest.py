"""Root fixtures: the three personas (owner, other user, anonymous), API clients, service gates."""

from __future__ import annotations

import os

import pytest
from django.conf import settings

REQUIRE = os.environ.get("COINLINK_REQUIRE_SERVICES", "").lower() in ("1", "true", "yes")


README_SECTION = "Test it"  # where the README says how to run the suite with the services


def _service_missing(marker: str) -> str | None:
    if marker == "postgres" and settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        return f'needs PostgreSQL: set DATABASE_URL (see README, "{README_SECTION}")'
    if marker == "redis" and not settings.CONFIG.redis_url:
        return f'needs Redis: set REDIS_URL (see README, "{README_SECTION}")'
    return None


def pytest_runtest_setup(item):
    for marker in ("postgres", "redis"):
        if item.get_closest_marker(marker):
            reason = _service_missing(marker)
            if reason and REQUIRE:
                pytest.fail(f"COINLINK_REQUIRE_SERVICES=1 but this test {reason}")
            if reason:
                pytest.skip(reason)


def pytest_report_header(config):
    db = settings.DATABASES["default"]
    return [
        f"coinlink: database={db['ENGINE'].rsplit('.', 1)[-1]} "
        f"redis={'yes' if settings.CONFIG.redis_url else 'no (embedded)'} require_services={REQUIRE}"
    ]


@pytest.fixture(autouse=True)
def _fast_and_clean(settings):
    """Cheap hashes and an empty cache, so each test starts from a known state."""
    from django.core.cache import cache

    from markets.snapshot import snapshot_forget

    settings.BCRYPT_ROUNDS = 4
    cache.clear()
    snapshot_forget()  # the per-process copy of the market snapshot must not outlive the cache
    yield


@pytest.fixture
def password() -> str:
    return "correct horse battery staple"


@pytest.fixture
def owner(db, password):
    from tests.factories import UserFactory

    return UserFactory(email="owner@example.com", password=password)


@pytest.fixture
def other_user(db, password):
    from tests.factories import UserFactory

    return UserFactory(email="other@example.com", password=password)


@pytest.fixture
def anon_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def owner_client(owner):
    from tests.factories import api_client_for

    return api_client_for(owner)


@pytest.fixture
def other_client(other_user):
    from tests.factories import api_client_for

    return api_client_for(other_user)


@pytest.fixture
def browser():
    """Headless Chromium that records its console and network (tests/browser.py); closed after the test."""
    from tests.browser import chromium

    driver = chromium()
    yield driver
    driver.quit()
