import ipaddress

from coinlink.net import client_ip_from


def test_it_ignores_forwarded_for_from_an_untrusted_peer(settings):
    settings.TRUSTED_PROXIES = ()
    assert client_ip_from("203.0.113.9", "1.2.3.4") == "203.0.113.9"


def test_it_takes_the_first_untrusted_hop_behind_trusted_proxies(settings):
    settings.TRUSTED_PROXIES = (ipaddress.ip_network("10.0.0.0/8"),)
    assert client_ip_from("10.0.0.2", "6.6.6.6, 198.51.100.7, 10.0.0.1") == "198.51.100.7"


def test_it_falls_back_to_the_peer_on_garbage(settings):
    settings.TRUSTED_PROXIES = (ipaddress.ip_network("10.0.0.0/8"),)
    assert client_ip_from("10.0.0.2", "not-an-ip") == "10.0.0.2"
