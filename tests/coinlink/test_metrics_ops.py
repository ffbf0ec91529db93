"""/metrics content that alerts depend on, and who may read it."""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime, timedelta

import pytest

pytestmark = pytest.mark.django_db


def _value(text: str, name: str) -> float:
    match = re.search(rf"^{name} ([0-9.e+-]+)$", text, re.M)
    assert match, f"{name} not exported"
    return float(match.group(1))


def test_it_recomputes_the_market_data_age_at_scrape_time(client):
    from markets.models import ProviderStatus

    ProviderStatus.objects.update_or_create(
        provider="coingecko", defaults={"last_success": datetime.now(UTC) - timedelta(seconds=600)}
    )
    age = _value(client.get("/metrics").content.decode(), "coinlink_market_data_age_seconds")
    assert 590 <= age <= 700  # the ingest stopped ten minutes ago: the gauge says so, not its last value


def test_it_counts_requests_refused_because_the_database_is_down(client, monkeypatch):
    from coinlink import metrics
    from coinlink.errors import response_for_exception

    before = metrics.DEPENDENCY_ERRORS.labels(dependency="database")._value.get()
    from django.db import OperationalError

    assert response_for_exception(OperationalError("gone")).status_code == 503
    assert metrics.DEPENDENCY_ERRORS.labels(dependency="database")._value.get() == before + 1


def test_a_token_or_an_allowed_network_each_suffice_when_both_are_set(client, settings):
    settings.METRICS_TOKEN = "scrape-secret"
    settings.METRICS_ALLOWED_NETWORKS = (ipaddress.ip_network("10.0.0.0/8"),)
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.1").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.1", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.1", HTTP_AUTHORIZATION="Bearer scrape-secret").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.9.8.7").status_code == 200


def test_a_refused_scrape_is_in_the_error_shape(client, settings):
    settings.METRICS_TOKEN = "scrape-secret"
    response = client.get("/metrics")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert "coinlink_" not in response.content.decode()


def test_a_spoofed_forwarded_for_does_not_open_metrics(client, settings):
    settings.METRICS_ALLOWED_NETWORKS = (ipaddress.ip_network("10.0.0.0/8"),)
    settings.TRUSTED_PROXIES = ()
    response = client.get("/metrics", REMOTE_ADDR="192.0.2.1", HTTP_X_FORWARDED_FOR="10.0.0.1")
    assert response.status_code == 403


@pytest.mark.parametrize("hop", ["not-an-ip", "127.0.0.1:9100", ""])
def test_an_unparsable_forwarded_hop_does_not_inherit_the_proxys_metrics_access(client, settings, hop):
    settings.METRICS_ALLOWED_NETWORKS = (ipaddress.ip_network("127.0.0.0/8"),)
    settings.TRUSTED_PROXIES = (ipaddress.ip_network("127.0.0.0/8"),)
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200  # the proxy's own scrape

    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=f"{hop}, 127.0.0.1")

    assert response.status_code == 403


def test_a_mapped_loopback_scraper_is_the_loopback_it_is(client, settings):
    settings.METRICS_ALLOWED_NETWORKS = (ipaddress.ip_network("127.0.0.0/8"),)
    settings.TRUSTED_PROXIES = ()
    assert client.get("/metrics", REMOTE_ADDR="::ffff:127.0.0.1").status_code == 200
