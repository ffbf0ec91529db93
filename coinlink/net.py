"""The client's IP address, trusting proxy headers only from configured proxies."""

from __future__ import annotations

import ipaddress

from django.conf import settings

# What a client is called when its address cannot be read: never an address, so no network (the
# /metrics allow list, TRUSTED_PROXIES) contains it.
UNKNOWN = "unknown"
# django-ratelimit masks its key as an address, so the clients of UNKNOWN share one bucket: the
# unspecified address, which no peer connects from. Varying the garbage cannot buy a fresh counter.
_UNKNOWN_BUCKET = "0.0.0.0"  # noqa: S104  # nosec B104 - a rate-limit key, not a bind address


def ip_parse(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address in `value`, an IPv4-mapped IPv6 one (`::ffff:a.b.c.d`) as the IPv4 address it is; else None.

    A zone index (`fe80::1%eth0`) is dropped: it names an interface of the host that wrote it, and
    varying it must not make one client several (rate-limit buckets, per-address socket counts).
    """
    try:
        ip = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        return ip.ipv4_mapped or ipaddress.IPv6Address(ip.packed)
    return ip


def _trusted(ip) -> bool:
    return ip is not None and any(ip in network for network in settings.TRUSTED_PROXIES)


def client_ip_from(remote_addr: str, forwarded_for: str | None) -> str:
    """Walk X-Forwarded-For from the right, skipping trusted proxies; the first untrusted hop is the client.

    A hop that is not an address is UNKNOWN, never the proxy that passed it on: the proxy's address
    may be trusted (by /metrics), and the client behind it is not.
    """
    peer = ip_parse(remote_addr)
    if peer is None:
        return UNKNOWN
    if not forwarded_for or not _trusted(peer):
        return str(peer)
    for hop in reversed(forwarded_for.split(",")):  # an empty hop is as unparsable as any other
        ip = ip_parse(hop)
        if not _trusted(ip):
            return str(ip) if ip is not None else UNKNOWN
    return str(peer)


def client_ip(request) -> str:
    return client_ip_from(request.META.get("REMOTE_ADDR", ""), request.META.get("HTTP_X_FORWARDED_FOR"))


def client_ip_for_ratelimit(request) -> str:
    """django-ratelimit's RATELIMIT_IP_META_KEY callable."""
    ip = client_ip(request)
    return _UNKNOWN_BUCKET if ip == UNKNOWN else ip
