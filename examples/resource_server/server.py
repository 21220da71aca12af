"""A reference resource server: trusts the API's tokens by its JWKS and its pushed events.

Run it with `python examples/resource_server/server.py`; README.md beside it explains it.
"""

import json
import logging
import signal
import sys
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from channel import CREDENTIAL_CHANGE, REVOKED, SESSION_REVOKED, VERIFICATION, Channel
from config import Config, ConfigError
from issuer import Issuer, Unavailable
from verify import InvalidToken, RejectedEvent, verify_access_token, verify_event

log = logging.getLogger("resource_server")

MAX_EVENT_BYTES = 64 * 1024
REALM = "resource-server"
SET_MEDIA_TYPE = "application/secevent+jwt"
ROUTES = {"/whoami": "GET", "/healthz": "GET", "/events": "POST"}


@dataclass
class Reply:
    """An HTTP answer: status, JSON body (None for an empty one) and extra headers."""

    status: int
    body: dict | None = None
    headers: dict = field(default_factory=dict)


class ResourceServer:
    """The decisions behind each endpoint; the HTTP handler only translates to and from them."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.issuer = Issuer(config)
        self.channel = Channel(
            now=time.time(),
            tolerance=config.tolerance_seconds,
            memory=config.memory_seconds,
            max_remembered=config.max_remembered,
            leeway=config.leeway_seconds,
        )

    def whoami(self, authorization: str | None) -> Reply:
        """200 with the token's sub and sid, 401 for a token we refuse, 503 when unsure."""
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            log.info("whoami 401: no bearer token")
            return Reply(
                401,
                {
                    "error": "Authentication credentials were not provided.",
                    "code": "not_authenticated",
                },
                {"WWW-Authenticate": f'Bearer realm="{REALM}"'},
            )
        try:
            claims = verify_access_token(token, self.issuer, self.config)
            why = self.channel.judge(claims["sid"], claims["iat"], time.time())
            if why == REVOKED:
                raise InvalidToken(f"session {claims['sid']!r} was revoked")
            if why is not None and not self.issuer.introspect(token):
                raise InvalidToken(f"introspection says not active ({why})")
        except InvalidToken as refusal:
            log.info("whoami 401: %s", refusal)
            return Reply(
                401,
                {"error": "The token is invalid, expired or revoked.", "code": "invalid_token"},
                {"WWW-Authenticate": f'Bearer realm="{REALM}", error="invalid_token"'},
            )
        except Unavailable as error:
            # Fail closed: when we cannot decide safely, nobody gets in.
            log.warning("whoami 503: %s", error)
            return Reply(
                503,
                {"error": "Cannot check the token right now; try again.", "code": "unavailable"},
                {"Retry-After": "5"},
            )
        how = "locally" if why is None else f"by introspection ({why})"
        log.info("whoami 200 %s: sub=%r sid=%r", how, claims["sub"], claims["sid"])
        return Reply(200, {"sub": claims["sub"], "sid": claims["sid"]})

    def receive(self, content_type: str | None, body: bytes) -> Reply:
        """RFC 8935: 202 once applied (a duplicate too), 400 for a SET we refuse for good."""
        try:
            if (content_type or "").split(";")[0].strip().lower() != SET_MEDIA_TYPE:
                raise RejectedEvent("invalid_request", f"Content-Type must be {SET_MEDIA_TYPE}")
            event = verify_event(body, self.issuer, self.config.client_id)
        except RejectedEvent as refusal:
            if refusal.signed:
                # The API signed it and will not send it again. If it revoked a session we
                # missed that: tokens issued until now are introspected from now on.
                self.channel.lost_event(time.time())
                log.warning(
                    "event 400 %s: %s; it was signed by the API, so tokens issued until now "
                    "will be introspected",
                    *(refusal.err, refusal.description),
                )
            else:
                log.info("event 400 %s: %s", refusal.err, refusal.description)
            return Reply(400, {"err": refusal.err, "description": refusal.description})
        except Unavailable as error:
            # Not a 400: that would make the API drop what may be a revocation. Any
            # other status makes it deliver the event again later.
            log.warning("event 503, the API will retry: %s", error)
            return Reply(503, {"error": "Cannot verify events right now.", "code": "unavailable"})
        if not self.channel.record(event, time.time()):
            log.info("event 202 jti=%r: a duplicate, already applied", event.jti)
        elif event.type == SESSION_REVOKED:
            log.info(
                "event 202 session-revoked jti=%r sid=%r sub=%r reason=%r: its tokens are "
                "refused from now on",
                *(event.jti, event.sid, event.sub, event.reason),
            )
        elif event.type == CREDENTIAL_CHANGE:
            log.info(
                "event 202 credential-change jti=%r sub=%r: the sessions it ended each get "
                "their own session-revoked",
                *(event.jti, event.sub),
            )
        elif event.type == VERIFICATION:
            log.info(
                "event 202 heartbeat jti=%r, issued %.1fs ago: every event written before it "
                "has arrived",
                *(event.jti, time.time() - event.issued_at),
            )
        else:
            log.info(
                "event 202 jti=%r: type %r is not one this server acts on", event.jti, event.type
            )
        return Reply(202)

    def health(self) -> Reply:
        """The channel's state, for operators and tests."""
        return Reply(200, self.channel.state(time.time()))


class Handler(BaseHTTPRequestHandler):
    """Routes three paths to the ResourceServer and writes its Reply as JSON."""

    server_version = "resource-server"
    sys_version = ""
    # A client that stalls mid-request gives its thread back after this many seconds.
    timeout = 10

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        path = urlsplit(self.path).path
        try:
            reply = self._reply(method, path)
        except Exception:
            log.exception("%s %s 500", method, path)
            reply = Reply(500, _error("Internal error.", "server_error"))
        self._send(reply)

    def _reply(self, method: str, path: str) -> Reply:
        app = self.server.app
        if path not in ROUTES:
            return Reply(404, _error("Not found.", "not_found"))
        if method != ROUTES[path]:
            return Reply(
                405, _error("Method not allowed.", "method_not_allowed"), {"Allow": ROUTES[path]}
            )
        if path == "/whoami":
            return app.whoami(self.headers.get("Authorization"))
        if path == "/healthz":
            return app.health()
        return self._receive()

    def _receive(self) -> Reply:
        length = self.headers.get("Content-Length", "")
        if not (length.isascii() and length.isdigit()) or int(length) > MAX_EVENT_BYTES:
            self.close_connection = True  # the unread body must not be taken for a request
            return Reply(400, {"err": "invalid_request", "description": "a body of at most 64 KiB"})
        return self.server.app.receive(
            self.headers.get("Content-Type"), self.rfile.read(int(length))
        )

    def _send(self, reply: Reply) -> None:
        body = b"" if reply.body is None else json.dumps(reply.body).encode()
        self.send_response(reply.status)
        if reply.body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (a bad request line, an unknown method) in JSON too."""
        self.close_connection = True
        phrase = HTTPStatus(code).phrase
        self._send(Reply(code, _error(message or phrase, phrase.lower().replace(" ", "_"))))

    def log_message(self, format: str, *args) -> None:
        """Access lines go to DEBUG: the decisions above are the INFO lines."""
        log.debug("%s " + format, self.address_string(), *args)


class Server(ThreadingHTTPServer):
    """A thread per connection; daemon threads so a stop never waits on a slow client."""

    daemon_threads = True
    # socketserver's default backlog of 5 drops connections under a burst (the API catching
    # up on events while clients call); a dropped SYN costs the caller a second.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: ResourceServer) -> None:
        super().__init__(address, Handler)
        self.app = app


def _error(message: str, code: str) -> dict:
    return {"error": message, "code": code}


def main() -> int:
    """Read the configuration, listen, and serve until stopped."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        config = Config.from_environ()
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    app = ResourceServer(config)
    server = Server((config.host, config.port), app)
    host, port = server.server_address[:2]
    log.info(
        "listening on http://%s:%s as client_id %r for issuer %s (tolerance %gs)",
        *(host, port, config.client_id, config.issuer, config.tolerance_seconds),
    )
    try:
        app.issuer.metadata()
    except Unavailable as error:
        log.warning("issuer not reachable yet, every request will try again: %s", error)
    # SIGTERM stops it as Ctrl-C does, so the socket is closed and the stop is logged.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
