"""The client's IP address, trusting proxy headers only from configured proxies."""

from __future__ import annotations

import ipaddress

from django.conf import settings


def _trusted(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in settings.TRUSTED_PROXIES)


def client_ip_from(remote_addr: str, forwarded_for: str | None) -> str:
    """Walk X-Forwarded-For from the right, skipping trusted proxies; the first untrusted hop is the client."""
    if not forwarded_for or not _trusted(remote_addr):
        return remote_addr
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        if not _trusted(hop):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return remote_addr
    return remote_addr


def client_ip(request) -> str:
    return client_ip_from(request.META.get("REMOTE_ADDR", ""), request.META.get("HTTP_X_FORWARDED_FOR"))


def client_ip_for_ratelimit(request) -> str:
    """django-ratelimit's RATELIMIT_IP_META_KEY callable."""
    return client_ip(request) or "unknown"
