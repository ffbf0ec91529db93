"""Property-based fuzzing of every operation in the OpenAPI schema (/api/schema), anonymous and
authenticated: no response may be a 5xx, and every documented response must match its schema.

Bounded (FUZZ_EXAMPLES per operation, default 12) so the whole run stays well under three minutes;
raise it locally for a deeper search: FUZZ_EXAMPLES=200 scripts/test tests/test_schema_fuzz.py
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # no .hypothesis/ directory in the work tree
    derandomize=True,  # the same cases every run: a failure is reproducible, CI is not flaky
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(autouse=True)
def _no_rate_limits(settings):
    """Fuzzing sends hundreds of requests from one address: the limits are tested elsewhere."""
    settings.RATELIMIT_ENABLE = False
    settings.RATELIMIT_DEFAULT = settings.RATELIMIT_MARKET = "1000000/m"


@pytest.fixture(autouse=True)
def _keep_the_test_transaction():
    """The real WSGI handler closes "old" connections per request, which would close the test's open
    transaction; Django's own test client disconnects the same handlers."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture(autouse=True)
def _market_data(db):
    """A warm market (two assets priced in every quote), as in production after the first ingest."""
    from datetime import UTC, datetime
    from decimal import Decimal

    from markets.models import Asset, Ticker

    now = datetime.now(UTC)
    for rank, (symbol, name, price) in enumerate((("BTC", "Bitcoin", "64000.5"), ("ETH", "Ethereum", "3100.25")), 1):
        asset, _ = Asset.objects.update_or_create(
            symbol=symbol, defaults={"name": name, "coingecko_id": name.lower(), "rank": rank, "is_active": True}
        )
        for quote in ("usd", "eur", "gbp"):
            Ticker.objects.update_or_create(
                asset=asset,
                quote=quote,
                defaults={
                    "price": Decimal(price),
                    "change_24h": Decimal("12.5"),
                    "change_percent_24h": Decimal("1.25"),
                    "volume_24h": Decimal("1000000"),
                    "market_cap": Decimal("1000000000"),
                    "bid": Decimal(price),
                    "ask": Decimal(price),
                    "source": "coingecko",
                    "last_updated": now,
                    "fetched_at": now,
                },
            )


def _load_schema():
    from coinlink.wsgi import application

    return schemathesis.openapi.from_wsgi("/api/schema?format=json", application)


# Loaded at collection (pytest-django has configured Django by then); the lazy fixture loader of
# schemathesis does not work with this pytest version.
schema = _load_schema()


@pytest.fixture
def bearer(owner) -> dict[str, str]:
    from tests.factories import tokens_for

    return {"Authorization": f"Bearer {tokens_for(owner)['access_token']}"}


# The in-process WSGI transport does not decode Content-Encoding; ask for plain bodies so that a
# compressed variant (a valid HTTP answer) is never mistaken for a broken one.
IDENTITY = {"Accept-Encoding": "identity"}


@schema.parametrize()
@FUZZ_SETTINGS
def test_it_survives_fuzzing_anonymously(case):
    case.call_and_validate(headers=IDENTITY, checks=CHECKS)


@schema.parametrize()
@FUZZ_SETTINGS
def test_it_survives_fuzzing_authenticated(case, bearer):
    case.call_and_validate(headers={**IDENTITY, **bearer}, checks=CHECKS)
