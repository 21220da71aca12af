"""Who is at the other end of a request, as plain data the services can take."""

from dataclasses import dataclass
from ipaddress import ip_address

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
    ident = BaseThrottle().get_ident(request)
    try:
        ip = str(ip_address(ident))
    except ValueError:
        ip = None
    # PostgreSQL text cannot hold NUL, which a raw HTTP client may still send.
    user_agent = request.META.get("HTTP_USER_AGENT", "").replace("\x00", "")
    return Client(ip=ip, user_agent=user_agent[:USER_AGENT_MAX_LENGTH])
