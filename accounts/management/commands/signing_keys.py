"""`manage.py signing_keys list | add | activate KID | retire KID`: rotate the signing keys."""

import re
import sys
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from rest_framework_simplejwt import settings as simplejwt

from accounts import keys
from accounts.conf import app_settings
from accounts.models import KeyRotationError, KeyState, SigningKey


class Command(BaseCommand):
    help = (
        "Rotate the keys tokens are signed with, on every app server at once: `add` publishes "
        "a new key in the JWKS, `activate` makes it sign (once clients have had JWKS_MAX_AGE "
        "to see it), `retire` unpublishes an old one once the last token it signed expires."
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        """argparse reads a kid that starts with `-` (one in 64 do: base64url) as an unknown
        option; this parser reads it as the kid, so the printed commands work as printed."""
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parse_args = parser.parse_args

        def parse_with_dashed_kids(args=None, namespace=None):
            args = list(sys.argv[2:] if args is None else args)
            if args[:1] in (["activate"], ["retire"]):
                kids = [arg for arg in args[1:] if _looks_like_dashed_kid(arg)]
                if kids and "--" not in args:
                    args = [arg for arg in args if arg not in kids] + ["--", *kids]
            return parse_args(args, namespace)

        parser.parse_args = parse_with_dashed_kids
        return parser

    def add_arguments(self, parser):
        verbs = parser.add_subparsers(dest="verb", required=True)
        verbs.add_parser("list", help="every key, its state and dates")
        add = verbs.add_parser("add", help="make (or import) a key, published but not signing")
        add.add_argument(
            "--from-file",
            metavar="PATH",
            help="import this unencrypted PEM private key ('-' reads standard input)",
        )
        activate = verbs.add_parser("activate", help="sign with this key from now on")
        activate.add_argument("kid", help="the key id, or a unique start of it (8+ characters)")
        activate.add_argument(
            "--now",
            action="store_true",
            help="do not wait JWKS_MAX_AGE after `add` (a client with a cached JWKS may "
            "refuse new tokens until it fetches the JWKS again)",
        )
        retire = verbs.add_parser("retire", help="stop publishing once its tokens have expired")
        retire.add_argument("kid", help="the key id, or a unique start of it (8+ characters)")

    def handle(self, *args, verb, **options):
        if app_settings.SIGNING_ALGORITHM.startswith("HS"):
            raise CommandError(
                f"{app_settings.SIGNING_ALGORITHM} signs with a shared secret, not a key pair: "
                "rotate JWT_SIGNING_KEY, or set JWT_ALGORITHM=RS256 to use published keys."
            )
        try:
            getattr(self, verb)(**options)
        except KeyRotationError as refused:
            raise CommandError(str(refused)) from None

    def list(self, **options):
        rows = SigningKey.objects.order_by("-created_at")
        if not rows:
            self.stdout.write("No signing key yet: the first login makes one (or run `add`).")
        for key in rows:
            until = (
                f", published until {_when(key.needed_until)}"
                if key.state == KeyState.RETIRED
                else ""
            )
            self.stdout.write(
                f"{key.kid}  {key.algorithm}  {key.state:<8}  added {_when(key.created_at)}"
                f"  activated {_when(key.activated_at)}  deactivated {_when(key.deactivated_at)}"
                f"{until}"
            )

    def add(self, *, from_file, **options):
        private_key = None
        if from_file:
            pem = sys.stdin.read() if from_file == "-" else _read(from_file)
            try:
                private_key = keys.load_private(pem)
            except (ValueError, TypeError) as exc:
                raise CommandError(f"{from_file} is not an unencrypted PEM private key") from exc
        key = SigningKey.objects.add(
            algorithm=app_settings.SIGNING_ALGORITHM, private_key=private_key
        )
        wait = app_settings.JWKS_MAX_AGE
        self.stdout.write(
            f"Added {key.kid} ({key.algorithm}), published in the JWKS from now. "
            f"Activate it in {wait} s or later: manage.py signing_keys activate {key.kid}"
        )

    def activate(self, *, kid, now, **options):
        key = _find(kid)
        wait = timedelta(0) if now else timedelta(seconds=app_settings.JWKS_MAX_AGE)
        previous = key.activate(wait=wait)
        self.stdout.write(f"Activated {key.kid}: it signs from now on, on every app server.")
        if previous is not None:
            self.stdout.write(
                f"{previous.kid} signs no more; its tokens keep verifying. Retire it when you "
                f"no longer need to switch back: manage.py signing_keys retire {previous.kid}"
            )

    def retire(self, *, kid, **options):
        key = _find(kid)
        key.retire(longest_token=longest_token_lifetime())
        self.stdout.write(
            f"Retired {key.kid}: it leaves the JWKS at {_when(key.needed_until)}, when the "
            "last token it signed has expired."
        )


def longest_token_lifetime() -> timedelta:
    """How long after a key stops signing a token it signed may still be presented.

    The longest token lifetime (a refresh token's, capped by the session's absolute
    lifetime), plus the time a server may keep signing with a ring it read before the
    rotation, plus the clock leeway.
    """
    token = min(
        max(
            simplejwt.api_settings.ACCESS_TOKEN_LIFETIME,
            simplejwt.api_settings.REFRESH_TOKEN_LIFETIME,
        ),
        app_settings.SESSION_ABSOLUTE_LIFETIME,
    )
    leeway = simplejwt.api_settings.LEEWAY
    leeway = leeway if isinstance(leeway, timedelta) else timedelta(seconds=leeway or 0)
    return token + timedelta(seconds=app_settings.KEY_RING_SECONDS) + leeway


# The options `activate` and `retire` take: anything else that starts with a dash and is
# made of base64url characters is a kid (or the start of one).
OPTIONS = frozenset(
    {
        "--now",
        "--help",
        "--verbosity",
        "--settings",
        "--pythonpath",
        "--traceback",
        "--no-color",
        "--force-color",
        "--skip-checks",
    }
)


def _looks_like_dashed_kid(arg: str) -> bool:
    return arg not in OPTIONS and re.fullmatch(r"-[A-Za-z0-9_-]{7,}", arg) is not None


def _find(kid: str) -> SigningKey:
    """The key whose id is `kid`, or starts with it (8 characters at least)."""
    exact = SigningKey.objects.filter(kid=kid).first()
    if exact is not None:
        return exact
    if len(kid) < 8:
        raise CommandError("Give the key id, or at least its first 8 characters.")
    matches = list(SigningKey.objects.filter(kid__startswith=kid)[:2])
    if len(matches) != 1:
        raise CommandError(f"No key or several keys start with {kid!r}: `signing_keys list`.")
    return matches[0]


def _read(path: str) -> str:
    try:
        with open(path) as file:
            return file.read()
    except OSError as exc:
        raise CommandError(f"Cannot read {path}: {exc.strerror}") from None


def _when(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S") if moment else "-"
