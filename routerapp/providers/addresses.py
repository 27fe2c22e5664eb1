"""Is a provider's base URL on this machine or a private network?

Loopback and private upstreams are normal (self-hosted vLLM, Ollama, a compose service), so they
are allowed; they are flagged so a provider pointed at an internal address is visible on the
provider pages and in the audit log. Judged from the URL alone, without DNS: a public name can
still resolve to a private address, so this is a marker, not a barrier.

Pure: no Django.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

# Names that only make sense inside a machine or a private network.
LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".lan", ".home.arpa")


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        try:
            # The forms HTTP clients accept too: 127.1, 0x7f.0.0.1, 2130706433.
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_private_base_url(url: str) -> bool:
    """True for loopback, private, link-local, unspecified or reserved IP literals, `localhost`,
    local-only domain suffixes and single-label names (`http://vllm:8000`)."""
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return False
    if not host:
        return False
    host = host.rstrip(".").lower()
    address = _ip(host)
    if address is None:
        return host == "localhost" or host.endswith(LOCAL_SUFFIXES) or "." not in host
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_unspecified
        or address.is_reserved
    )
