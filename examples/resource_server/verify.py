"""Signature and claim checks on what arrives: bearer access tokens and pushed SETs (RFC 8417)."""

import time

import jwt
from channel import CREDENTIAL_CHANGE, SESSION_REVOKED, SecurityEvent
from issuer import Issuer, Unavailable, UnknownKey

# The only algorithm the API signs with; a token never gets to choose (no "none", no HS256
# keyed with our public key).
ALGORITHMS = ["RS256"]
ACCESS_CLAIMS = ["iss", "sub", "sid", "iat", "exp", "jti", "token_type"]
EVENT_CLAIMS = ["iss", "aud", "iat", "jti", "events"]


class InvalidToken(Exception):
    """The bearer token is not one we accept: 401 invalid_token."""


class RejectedEvent(Exception):
    """A SET refused for good: 400 with an RFC 8935 error code (the API will not retry it).

    `signed` says its signature verified: the API did send it, so refusing it may lose an event.
    """

    def __init__(self, err: str, description: str, *, signed: bool = False) -> None:
        super().__init__(description)
        self.err = err
        self.description = description
        self.signed = signed


def verify_access_token(token: str, issuer: Issuer, config) -> dict:
    """The claims of a valid access token, or InvalidToken; Unavailable if keys are unreachable."""
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.InvalidTokenError as error:
        raise InvalidToken(f"not a JWT: {error}") from None
    if not isinstance(kid, str):
        raise InvalidToken("no kid in its header")
    try:
        claims = jwt.decode(
            token,
            issuer.signing_key(kid),
            algorithms=ALGORITHMS,
            issuer=issuer.identifier,
            # aud is checked when RS_AUDIENCE is set; without it a token carrying one is
            # refused (PyJWT's default), so a token for another audience never passes.
            audience=config.audience,
            leeway=config.leeway_seconds,
            options={"require": ACCESS_CLAIMS},
        )
    except UnknownKey as error:
        raise InvalidToken(str(error)) from None
    except jwt.InvalidTokenError as error:
        raise InvalidToken(str(error)) from None
    if claims["token_type"] != "access":
        raise InvalidToken(f"token_type is {claims['token_type']!r}, not 'access'")
    # When the session itself ends (its absolute expiry), which may come before exp.
    session_exp = claims.get("session_exp")
    if _number(session_exp) and session_exp + config.leeway_seconds <= time.time():
        raise InvalidToken("its session has expired (session_exp)")
    if not _text(claims["sid"]) or not _text(claims["sub"]) or not _number(claims["iat"]):
        raise InvalidToken("sid and sub must be strings, iat a number")
    return claims


def verify_event(body: bytes, issuer: Issuer, client_id: str) -> SecurityEvent:
    """The one event a valid SET carries, or RejectedEvent; Unavailable if keys are unreachable."""
    try:
        header = jwt.get_unverified_header(body)
    except jwt.InvalidTokenError:
        raise RejectedEvent("invalid_request", "the body is not a compact JWS") from None
    typ = header.get("typ")
    # RFC 7515 §4.1.9 lets "application/" be left out of typ; media types ignore case.
    if not isinstance(typ, str) or typ.lower().removeprefix("application/") != "secevent+jwt":
        raise RejectedEvent("invalid_request", 'typ must be "secevent+jwt"')
    kid = header.get("kid")
    if not isinstance(kid, str):
        raise RejectedEvent("invalid_key", "no kid in its header")
    try:
        claims = jwt.decode(
            body,
            issuer.signing_key(kid),
            algorithms=ALGORITHMS,
            issuer=issuer.identifier,
            audience=client_id,
            # A retry can arrive a day later, and an API clock running ahead must not make
            # us drop a revocation: iat is required but not compared with our clock.
            options={"require": EVENT_CLAIMS, "verify_iat": False},
        )
    except UnknownKey as error:
        # Maybe a key the API has just started signing with, and our JWKS is still in its
        # refetch cooldown: a 503 makes the API send the event again later, when we know
        # it. A 400 would make it give up on what may be a revocation.
        raise Unavailable(f"event signed by a key not published yet: {error}") from None
    except jwt.InvalidSignatureError:
        raise RejectedEvent("invalid_key", "the signature does not verify") from None
    except (jwt.DecodeError, jwt.InvalidAlgorithmError) as error:
        raise RejectedEvent("invalid_request", str(error)) from None
    # PyJWT checks the claims only once the signature has verified: from here on the
    # refused SET is the API's own. One for another issuer or another receiver (a SET
    # replayed from elsewhere) was never meant for us: losing it loses nothing of ours.
    except jwt.InvalidIssuerError:
        raise RejectedEvent("invalid_issuer", f"iss must be {issuer.identifier!r}") from None
    except jwt.InvalidAudienceError:
        raise RejectedEvent("invalid_audience", f"aud must be {client_id!r}") from None
    except jwt.InvalidTokenError as error:
        raise RejectedEvent("invalid_request", str(error), signed=True) from None
    return _event(claims)


def _event(claims: dict) -> SecurityEvent:
    """Read the single event and its subject (sub_id) from verified claims."""
    events = claims["events"]
    if not isinstance(events, dict) or len(events) != 1:
        raise RejectedEvent("invalid_request", "events must have exactly one member", signed=True)
    [(event_type, payload)] = events.items()
    jti, issued_at = claims["jti"], claims["iat"]
    if not isinstance(payload, dict) or not _text(jti) or not _number(issued_at):
        raise RejectedEvent("invalid_request", "the event, jti or iat is malformed", signed=True)
    subject = _object(claims.get("sub_id"))
    if event_type == SESSION_REVOKED:
        sid = _text(_object(subject.get("session")).get("id"))
        if not sid:
            description = "session-revoked needs sub_id.session.id"
            raise RejectedEvent("invalid_request", description, signed=True)
        return SecurityEvent(
            jti,
            event_type,
            issued_at,
            sid=sid,
            sub=_text(_object(subject.get("user")).get("sub")),
            reason=_text(_object(payload.get("reason_admin")).get("en")),
        )
    if event_type == CREDENTIAL_CHANGE:
        return SecurityEvent(jti, event_type, issued_at, sub=_text(subject.get("sub")))
    return SecurityEvent(jti, event_type, issued_at)


def _object(value) -> dict:
    """A JSON object, or an empty one in its place."""
    return value if isinstance(value, dict) else {}


def _text(value) -> str | None:
    """A non-empty string, or None."""
    return value if isinstance(value, str) and value else None


def _number(value) -> bool:
    """A JSON number (bool is an int in Python, and is not one)."""
    return isinstance(value, int | float) and not isinstance(value, bool)
