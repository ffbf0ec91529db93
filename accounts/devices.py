"""What counts as "the same device": the user agent plus the client's network (IPv4 /24, IPv6 /48)."""

from __future__ import annotations

import hashlib
import ipaddress

USER_AGENT_MAX = 512


def user_agent_clean(value: str | None) -> str:
    """Printable, bounded user agent for storage and display."""
    text = "".join(c for c in (value or "") if c.isprintable())
    return text.strip()[:USER_AGENT_MAX]


def ip_clean(value: str | None) -> str | None:
    try:
        return str(ipaddress.ip_address((value or "").strip()))
    except ValueError:
        return None


def device_fingerprint(*, user_agent: str, ip_address: str | None) -> str:
    """Stable across a phone hopping addresses inside its carrier's /24, different for a new browser or network."""
    network = ""
    if ip_address:
        ip = ipaddress.ip_address(ip_address)
        prefix = 24 if ip.version == 4 else 48
        network = str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))
    return hashlib.sha256(f"{user_agent}\n{network}".encode()).hexdigest()
