"""`manage.py add_resource_server NAME`: register a service that checks our tokens."""

import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError

from accounts.models import ResourceServer


class Command(BaseCommand):
    help = (
        "Register a resource server: it may introspect tokens (RFC 7662) with the client_id "
        "and client_secret printed as JSON, shown this once (only a hash is stored), and with "
        "--push-url it receives session events. --replace gives an existing one a new secret."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="a name for people, unique")
        parser.add_argument("--push-url", default="", help="where to push session events")
        parser.add_argument(
            "--replace",
            action="store_true",
            help="if NAME exists, issue it a new secret (the old one stops working) and set "
            "--push-url",
        )

    def handle(self, *args, name, push_url, replace, **options):
        try:
            ResourceServer(name=name, push_url=push_url, client_id="-", secret_hash="-").full_clean(
                exclude=["client_id", "secret_hash"], validate_unique=False
            )
        except ValidationError as refused:
            problems = "; ".join(
                f"{field}: {' '.join(texts)}" for field, texts in refused.message_dict.items()
            )
            raise CommandError(problems) from None
        existing = ResourceServer.objects.filter(name=name).first()
        if existing is not None and not replace:
            raise CommandError(f"{name!r} is registered already (--replace gives a new secret).")
        if existing is not None:
            secret = existing.new_secret()
            if push_url:
                existing.push_url = push_url
                existing.save(update_fields=["push_url"])
            server = existing
        else:
            try:
                server, secret = ResourceServer.objects.register(name=name, push_url=push_url)
            except IntegrityError:
                raise CommandError(f"{name!r} is registered already.") from None
        self.stdout.write(json.dumps({"client_id": server.client_id, "client_secret": secret}))
