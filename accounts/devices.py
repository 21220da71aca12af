"""A person's name for the device behind a user agent: "Firefox on Ubuntu", "okhttp"."""

import functools

DEVICE_MAX_LENGTH = 64
UNKNOWN = "Unknown device"


@functools.lru_cache(maxsize=2048)
def device_label(user_agent: str) -> str:
    """Browser (or client library) and operating system, as uap-core's rules name them.

    Cached: a service sees the same few user agents again and again, and a parse costs
    about a millisecond.
    """
    if not user_agent.strip():
        return ""
    # Imported on first use: its rules are 6 MB that a process which never names a
    # device (cleanup, the event worker) need not hold.
    from ua_parser import parse

    result = parse(user_agent)
    client = _known(result.user_agent)
    system = _known(result.os)
    if client and system:
        label = f"{client} on {system}"
    else:
        # Unknown to the rules: the product token the client sends first, e.g. "TodoApp".
        product = user_agent.split("/", 1)[0].split()
        label = client or system or (product[0] if product else "")
    return label[:DEVICE_MAX_LENGTH] or UNKNOWN


def _known(part) -> str | None:
    family = part.family if part is not None else None
    return family if family and family != "Other" else None
