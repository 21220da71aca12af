"""Receivers for the push tests: loopback endpoints that record every SET, registered as
resource servers, and what the worker does with them (accounts.push, accounts.delivery)."""

import http.server
import io
import threading

import jwt
from django.core.management import call_command

from accounts import delivery, push
from accounts.models import (
    PushKind,
    ResourceServer,
)

REVOKED = push.EVENT_TYPES[PushKind.SESSION_REVOKED]
CHANGED = push.EVENT_TYPES[PushKind.CREDENTIAL_CHANGE]
VERIFIED = push.EVENT_TYPES[PushKind.VERIFICATION]


class Receiver:
    """A push endpoint on a free loopback port: records every SET, answers `status`."""

    def __init__(self) -> None:
        self.received: list[str] = []
        self.status = 202
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                assert self.headers["Content-Type"] == "application/secevent+jwt"
                receiver.received.append(body.decode())
                self.send_response(receiver.status)
                self.end_headers()
                if receiver.status == 400:
                    self.wfile.write(b'{"err": "invalid_request"}')

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/events"
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()

    def claims(self) -> list[dict]:
        return [jwt.decode(token, options={"verify_signature": False}) for token in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def registered_receivers():
    """Three receivers, registered with push URLs (the `receivers` fixture)."""
    made = []
    for name in ("gateway", "worker", "search"):
        receiver = Receiver()
        call_command("add_resource_server", name, "--push-url", receiver.url, stdout=io.StringIO())
        receiver.record = ResourceServer.objects.get(name=name)
        made.append(receiver)
    return made


def deliver_all() -> None:
    """What the worker's next dispatch does: fan the notices out, then deliver to each."""
    push.fan_out()
    for receiver in ResourceServer.objects.all():
        delivery.deliver(receiver.pk)


def revoke(sessions, reason) -> None:
    """End `sessions`, then fan their notice out into the outbox, as dispatch would."""
    sessions.revoke(reason)
    push.fan_out()


def revoked_sids(receiver) -> list[str]:
    return [
        claims["sub_id"]["session"]["id"]
        for claims in receiver.claims()
        if REVOKED in claims["events"]
    ]
