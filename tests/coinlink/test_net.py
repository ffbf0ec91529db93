import ipaddress

import pytest
from django.test import RequestFactory

from coinlink.errors import RateLimited
from coinlink.net import UNKNOWN, client_ip_from
from coinlink.ratelimit import limit

PROXIES = (ipaddress.ip_network("10.0.0.0/8"),)


def test_it_ignores_forwarded_for_from_an_untrusted_peer(settings):
    settings.TRUSTED_PROXIES = ()
    assert client_ip_from("203.0.113.9", "1.2.3.4") == "203.0.113.9"


def test_it_takes_the_first_untrusted_hop_behind_trusted_proxies(settings):
    settings.TRUSTED_PROXIES = PROXIES
    assert client_ip_from("10.0.0.2", "6.6.6.6, 198.51.100.7, 10.0.0.1") == "198.51.100.7"


@pytest.mark.parametrize(
    "hop", ["not-an-ip", "203.0.113.9:4711", "[2001:db8::1]", "unknown", "010.1.2.3", "1.2.3.4/8", " "]
)
def test_an_unparsable_hop_is_an_unknown_client_not_the_proxy(settings, hop):
    settings.TRUSTED_PROXIES = PROXIES
    assert client_ip_from("10.0.0.2", hop) == UNKNOWN
    assert client_ip_from("10.0.0.2", f"198.51.100.7, {hop}, 10.0.0.1") == UNKNOWN


@pytest.mark.parametrize(
    ("hop", "client"),
    [
        ("::ffff:198.51.100.7", "198.51.100.7"),
        ("::FFFF:C633:6407", "198.51.100.7"),
        (" 2001:db8::7 ", "2001:db8::7"),
    ],
)
def test_an_ipv4_mapped_hop_is_the_ipv4_client(settings, hop, client):
    settings.TRUSTED_PROXIES = PROXIES
    assert client_ip_from("10.0.0.2", hop) == client


def test_a_zone_index_is_dropped_it_names_the_proxys_interface_not_the_client(settings):
    settings.TRUSTED_PROXIES = PROXIES
    assert client_ip_from("10.0.0.2", "fe80::7%eth0") == "fe80::7"
    assert client_ip_from("fe80::2%lo", None) == "fe80::2"


def test_a_proxy_spelled_as_a_mapped_address_is_still_trusted(settings):
    settings.TRUSTED_PROXIES = PROXIES
    assert client_ip_from("::ffff:10.0.0.2", "198.51.100.7, ::ffff:10.0.0.1") == "198.51.100.7"


def test_a_peer_without_an_address_is_unknown(settings):
    settings.TRUSTED_PROXIES = PROXIES
    assert client_ip_from("", "198.51.100.7") == UNKNOWN


@pytest.fixture
def one_window(monkeypatch):
    """All counts of a test fall in one rate-limit window."""
    import django_ratelimit.core

    monkeypatch.setattr(django_ratelimit.core.time, "time", lambda: 1_800_000_000.0)


def _behind_proxy(forwarded_for: str):
    return RequestFactory().get("/api/v2/anything", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=forwarded_for)


@pytest.mark.django_db
def test_mapped_clients_each_have_their_own_budget_not_one_shared_slash_64(settings, one_window):
    settings.TRUSTED_PROXIES = PROXIES
    for _ in range(3):
        limit(_behind_proxy("::ffff:198.51.100.1"), group="t", key="ip", rate="3/m", fail_open=False)

    limit(_behind_proxy("::ffff:198.51.100.2"), group="t", key="ip", rate="3/m", fail_open=False)
    with pytest.raises(RateLimited):
        limit(_behind_proxy("198.51.100.1"), group="t", key="ip", rate="3/m", fail_open=False)


@pytest.mark.django_db
def test_unparsable_hops_share_one_budget_whatever_the_garbage(settings, one_window):
    settings.TRUSTED_PROXIES = PROXIES
    for n in range(3):
        limit(_behind_proxy(f"garbage-{n}"), group="t", key="ip", rate="3/m", fail_open=False)

    with pytest.raises(RateLimited):
        limit(_behind_proxy("more-garbage"), group="t", key="ip", rate="3/m", fail_open=False)
    limit(_behind_proxy("198.51.100.9"), group="t", key="ip", rate="3/m", fail_open=False)  # a real client: its own
