"""Key rotation: add publishes, activate signs, retire unpublishes; no token fails on the way."""

import io
from datetime import timedelta

import jwt
import pytest
from django.core.management import CommandError, call_command
from django.core.management.base import SystemCheckError
from django.db import IntegrityError, OperationalError, transaction
from django.utils import timezone

from accounts.keyring import KeyRing, key_ring
from accounts.models import KeyState, SigningKey
from tests.conftest import PASSWORD, bearer

pytestmark = pytest.mark.django_db


def keys_command(*args) -> str:
    out = io.StringIO()
    call_command("signing_keys", *args, stdout=out)
    return out.getvalue()


def kid_of(token: str) -> str:
    return jwt.get_unverified_header(token)["kid"]


def published(client) -> list[str]:
    return [key["kid"] for key in client.get("/.well-known/jwks.json").json()["keys"]]


@pytest.fixture
def first(tokens) -> SigningKey:
    """The key the first login made (a new installation makes its first key itself)."""
    return SigningKey.objects.get()


def added() -> SigningKey:
    keys_command("add")
    return SigningKey.objects.get(state=KeyState.STAGED)


def test_the_first_login_makes_the_first_key_active(api_client, tokens, first):
    assert first.state == KeyState.ACTIVE and first.algorithm == "RS256"
    assert kid_of(tokens["access_token"]) == first.kid
    assert first.kid in keys_command("list")


def test_an_added_key_is_published_before_it_signs(api_client, user, login, first):
    staged = added()
    assert published(api_client) == [first.kid, staged.kid]
    assert kid_of(login(user)["access_token"]) == first.kid


def test_activating_before_clients_could_see_it_is_refused_and_says_why(first):
    staged = added()
    with pytest.raises(CommandError, match=r"published for 0 s.*Wait 30[01] s more, or pass --now"):
        keys_command("activate", staged.kid)
    assert SigningKey.objects.get(pk=staged.pk).state == KeyState.STAGED


def test_activating_after_the_jwks_lifetime_rotates_every_new_token(
    api_client, user, login, tokens, first, time_machine
):
    staged = added()
    time_machine.move_to(timezone.now() + timedelta(seconds=301))
    out = keys_command("activate", staged.kid[:10])  # a unique start of the id will do
    assert f"Activated {staged.kid}" in out and f"retire {first.kid}" in out
    key_ring.clear()  # this process rereads at once; others do within KEY_RING_SECONDS

    fresh = login(user)
    assert kid_of(fresh["access_token"]) == kid_of(fresh["refresh_token"]) == staged.kid
    # What the old key signed keeps working until it expires.
    assert api_client.get("/todos", **bearer(tokens["access_token"])).status_code == 200
    refreshed = api_client.post(
        "/auth/refresh", {"refresh_token": tokens["refresh_token"]}, format="json"
    )
    assert refreshed.status_code == 200 and kid_of(refreshed.json()["access_token"]) == staged.kid
    states = dict(SigningKey.objects.values_list("kid", "state"))
    assert states == {first.kid: KeyState.PREVIOUS, staged.kid: KeyState.ACTIVE}
    assert published(api_client) == [staged.kid, first.kid]


def test_a_server_that_has_not_reread_its_ring_verifies_the_new_key_at_once(first):
    """Server A read the ring before the rotation; a token from server B names the new key."""
    server_a = KeyRing()
    assert server_a.signing().kid == first.kid
    staged = added()
    keys_command("activate", staged.kid, "--now")
    server_b = KeyRing()
    assert server_b.signing().kid == staged.kid
    assert server_a.verifying(staged.kid) is not None  # an unknown kid rereads the ring
    assert server_a.signing().kid == staged.kid


def test_activate_now_skips_the_wait(first):
    staged = added()
    keys_command("activate", staged.kid, "--now")
    assert SigningKey.objects.get(state=KeyState.ACTIVE).kid == staged.kid


def test_the_signing_key_cannot_be_retired(first):
    with pytest.raises(CommandError, match="is signing; activate another key before retiring"):
        keys_command("retire", first.kid)


def test_a_retired_key_is_published_until_its_last_token_expires(
    api_client, user, login, tokens, first, time_machine, settings
):
    staged = added()
    keys_command("activate", staged.kid, "--now")
    key_ring.clear()
    keys_command("retire", first.kid)
    retired = SigningKey.objects.get(pk=first.pk)
    lifetime = settings.SIMPLE_JWT["REFRESH_TOKEN_LIFETIME"]
    assert retired.needed_until >= retired.deactivated_at + lifetime

    time_machine.move_to(retired.needed_until - timedelta(seconds=1))
    key_ring.clear()
    assert first.kid in published(api_client)
    time_machine.move_to(retired.needed_until + timedelta(seconds=1))
    key_ring.clear()
    assert published(api_client) == [staged.kid]
    # Past its life nothing it signed verifies, whatever its own exp says.
    forged = jwt.encode(
        {
            **jwt.decode(tokens["access_token"], options={"verify_signature": False}),
            "exp": int((timezone.now() + timedelta(hours=1)).timestamp()),
        },
        open_private(first),
        algorithm="RS256",
        headers={"kid": first.kid},
    )
    assert api_client.get("/todos", **bearer(forged)).status_code == 401


def open_private(key: SigningKey):
    from accounts import keys
    from accounts.models import key_encryption_keys

    return keys.load_private(keys.decrypt(key.encrypted_private_key, key_encryption_keys()))


def test_a_staged_key_retired_leaves_the_jwks_at_once(api_client, first):
    staged = added()
    keys_command("retire", staged.kid)
    assert published(api_client) == [first.kid]


def test_a_forgiven_replay_after_a_rotation_is_still_the_very_same_pair(
    api_client, user, login, first
):
    tokens = login(user)
    new = api_client.post(
        "/auth/refresh", {"refresh_token": tokens["refresh_token"]}, format="json"
    )
    staged = added()
    keys_command("activate", staged.kid, "--now")
    key_ring.clear()
    again = api_client.post(
        "/auth/refresh", {"refresh_token": tokens["refresh_token"]}, format="json"
    )
    assert again.json() == new.json()  # re-signed by the key that signed it the first time
    assert kid_of(again.json()["access_token"]) == first.kid


def test_two_active_keys_are_refused_by_the_database(first):
    with pytest.raises(IntegrityError), transaction.atomic():
        SigningKey.objects.add(algorithm="RS256", active=True)
    assert SigningKey.objects.filter(state=KeyState.ACTIVE).count() == 1


def test_a_ring_keeps_its_keys_while_the_database_is_away(first, monkeypatch, settings):
    ring = KeyRing()
    assert ring.signing().kid == first.kid
    settings.ACCOUNTS = {**settings.ACCOUNTS, "KEY_RING_SECONDS": 0}

    def unavailable(self, now=None):
        raise OperationalError("connection refused")

    monkeypatch.setattr(type(SigningKey.objects.all()), "verifying", unavailable)
    assert ring.signing().kid == first.kid
    assert ring.verifying(first.kid) is not None


def test_unknown_or_ambiguous_key_ids_are_refused(first):
    with pytest.raises(CommandError, match="at least its first 8 characters"):
        keys_command("activate", "abc")
    with pytest.raises(CommandError, match="No key or several keys"):
        keys_command("activate", "zzzzzzzzzz")


def test_hmac_has_no_key_ring_to_rotate(settings):
    settings.ACCOUNTS = {**settings.ACCOUNTS, "SIGNING_ALGORITHM": "HS256"}
    with pytest.raises(CommandError, match="shared secret"):
        keys_command("add")


def test_the_private_key_opens_with_a_fallback_after_the_encryption_key_changes(
    api_client, tokens, first, settings
):
    old = settings.ACCOUNTS["KEY_ENCRYPTION_KEY"]
    settings.ACCOUNTS = {
        **settings.ACCOUNTS,
        "KEY_ENCRYPTION_KEY": "a-new-key-encryption-key-" + "n" * 40,
        "KEY_ENCRYPTION_KEY_FALLBACKS": [old],
    }
    key_ring.clear()
    assert api_client.get("/todos", **bearer(tokens["access_token"])).status_code == 200
    assert (
        api_client.post(
            "/auth/refresh", {"refresh_token": tokens["refresh_token"]}, format="json"
        ).status_code
        == 200
    )


def test_a_wrong_key_encryption_key_stops_signing_not_verifying(
    api_client, user, login, tokens, first, settings
):
    """The review's finding: a changed KEY_ENCRYPTION_KEY took every request down."""
    settings.ACCOUNTS = {**settings.ACCOUNTS, "KEY_ENCRYPTION_KEY": "another-key-" + "x" * 40}
    key_ring.clear()
    # Tokens already issued verify with the public key alone.
    assert api_client.get("/todos", **bearer(tokens["access_token"])).status_code == 200
    for response in (
        api_client.post(
            "/auth/login", {"username": user.username, "password": PASSWORD}, format="json"
        ),
        api_client.post("/auth/refresh", {"refresh_token": tokens["refresh_token"]}, format="json"),
        api_client.get("/healthz"),
    ):
        assert response.status_code == 503, response.content
        assert response.json()["code"] == "signing_key_unreadable"
    with pytest.raises(SystemCheckError, match=r"accounts\.E005"):
        call_command("check", databases=["default"])
    settings.ACCOUNTS = {
        **settings.ACCOUNTS,
        "KEY_ENCRYPTION_KEY_FALLBACKS": ["test-key-encryption-key-" + "k" * 40],
    }
    key_ring.clear()
    assert api_client.get("/healthz").status_code == 200


def test_a_kid_that_starts_with_a_dash_is_activated_and_retired_as_printed(first):
    staged = added()
    dashed = "-" + staged.kid[1:]  # base64url: one kid in 64 starts with "-"
    SigningKey.objects.filter(pk=staged.pk).update(kid=dashed)
    assert "Activated " + dashed in keys_command("activate", dashed, "--now")
    assert "Retired " + first.kid in keys_command("retire", first.kid)
    later = added()
    keys_command("activate", "--now", later.kid)
    assert "Retired " + dashed in keys_command("retire", dashed)


def test_a_replay_signed_by_a_key_this_ring_saw_staged_is_signed_by_that_key(first):
    staged = added()
    stale = KeyRing()
    assert stale.signing().kid == first.kid  # it read the ring with the new key staged
    keys_command("activate", staged.kid, "--now")
    # A pair the new key signed, replayed here before this ring's next read: same key.
    assert stale.signing(staged.kid).kid == staged.kid
