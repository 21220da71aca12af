"""Who is at the other end of a request, as plain data the services can take."""

from dataclasses import dataclass
from ipaddress import IPv6Address, ip_address, ip_network

from rest_framework.throttling import BaseThrottle

USER_AGENT_MAX_LENGTH = 512


@dataclass(frozen=True)
class Client:
    """The client's address (None if it is not an IP address) and user agent."""

    ip: str | None = None
    user_agent: str = ""


def client_of(request) -> Client:
    """The client of a Django or DRF request; the address as DRF's throttles see it.

    DRF honours NUM_PROXIES: with 0 (the default) X-Forwarded-For is ignored, so a
    client cannot choose its own address to dodge a rate limit.
    """
    ip = canonical_ip(BaseThrottle().get_ident(request))
    if ip is None:
        # A forwarded entry that is no address ("unknown", an obfuscated name): count
        # the client as the connection's peer, not as one "no address" every such client
        # would share.
        ip = canonical_ip(request.META.get("REMOTE_ADDR"))
    # PostgreSQL text cannot hold NUL, which a raw HTTP client may still send.
    user_agent = request.META.get("HTTP_USER_AGENT", "").replace("\x00", "")
    return Client(ip=ip, user_agent=user_agent[:USER_AGENT_MAX_LENGTH])


def canonical_ip(value: str | None) -> str | None:
    """`value` as one spelling of one address, or None if it is no IP address.

    An IPv4-mapped IPv6 address (`::ffff:198.51.100.7`, what a dual-stack socket or a
    proxy may report for an IPv4 client) is the IPv4 address it maps: counted as
    IPv6, every IPv4 client in the world would share one /64. An IPv6 zone
    (`fe80::1%eth0`) names this server's interface, not the client, and is dropped:
    the database's address columns do not keep it either. A port, as some proxies
    append it (`198.51.100.7:1111`, `[2001:db8::7]:443`), is dropped.
    """
    text = (value or "").strip()
    if text.startswith("[") and "]" in text:
        text = text[1 : text.index("]")]  # [v6] or [v6]:port
    elif text.count(":") == 1:
        text = text.partition(":")[0]  # v4:port (a bare IPv6 address has several colons)
    try:
        address = ip_address(text)
    except ValueError:
        return None
    if isinstance(address, IPv6Address):
        address = address.ipv4_mapped or IPv6Address(int(address))
    return str(address)


def network(ip: str | None, *, ipv4_prefix: int = 32, ipv6_prefix: int = 64) -> str | None:
    """The network `ip` belongs to, as a CIDR string; None for no address.

    One host commonly holds a whole IPv6 /64, so /64 is the smallest IPv6 unit worth
    telling apart; IPv4 is counted per address unless a wider prefix is asked for.
    """
    address = canonical_ip(ip)
    if address is None:
        return None
    prefix = ipv4_prefix if ":" not in address else ipv6_prefix
    return str(ip_network(f"{address}/{prefix}", strict=False))
