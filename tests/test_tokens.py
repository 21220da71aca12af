"""Minting a pair: a rotation's successor is the same tokens whenever it is minted again."""

import re
import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from accounts.models import Session
from accounts.tokens import SessionAccessToken, SessionRefreshToken, mint_pair, successor_jti

pytestmark = pytest.mark.django_db

ISSUED = datetime(2026, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)
SID = uuid.UUID("6f1c2a0e-0000-4000-8000-000000000001")


def mint(parent_jti="a" * 32, issued_at=ISSUED):
    # An unsaved session: minting reads only its id, user and absolute expiry.
    session = Session(pk=SID, user_id=7, expires_at=issued_at + timedelta(days=30))
    pair, _ = mint_pair(session=session, issued_at=issued_at, parent_jti=parent_jti)
    return pair


def claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


@pytest.fixture
def algorithm(request, settings):
    """Sign with the given algorithm, as JWT_ALGORITHM configures it (the ring makes a key)."""
    settings.ACCOUNTS = {**settings.ACCOUNTS, "SIGNING_ALGORITHM": request.param}
    return request.param


def test_a_rotation_minted_twice_is_the_same_tokens_byte_for_byte():
    first, again = mint(), mint()
    assert (first.access, first.refresh) == (again.access, again.refresh)
    assert first.access != first.refresh


@pytest.mark.parametrize("algorithm", ["RS256", "EdDSA", "HS256"], indirect=True)
def test_deterministic_signatures_give_the_same_bytes(algorithm):
    now = datetime.now(UTC)
    first, again = mint(issued_at=now), mint(issued_at=now)
    assert (first.access, first.refresh) == (again.access, again.refresh)
    assert jwt.get_unverified_header(first.access)["alg"] == algorithm
    SessionAccessToken(first.access)  # and it verifies
    SessionRefreshToken(first.refresh)


@pytest.mark.parametrize("algorithm", ["ES256"], indirect=True)
def test_ecdsa_signatures_differ_but_the_claims_and_jtis_are_the_same(algorithm):
    first, again = mint(), mint()
    assert first.refresh != again.refresh  # ECDSA signatures are randomized
    assert claims(first.access) == claims(again.access)
    assert claims(first.refresh) == claims(again.refresh)


def test_claims_come_from_the_rotation_time_and_the_parent():
    pair = mint()
    access, refresh = claims(pair.access), claims(pair.refresh)
    issued = int(ISSUED.timestamp())
    assert (access["iat"], access["exp"]) == (issued, issued + 900)
    assert (refresh["iat"], refresh["exp"]) == (issued, issued + 7 * 24 * 3600)
    assert refresh["jti"] == successor_jti("a" * 32, "refresh")
    assert access["jti"] == successor_jti("a" * 32, "access")
    assert refresh["sid"] == access["sid"] == str(SID)
    assert refresh["sub"] == access["sub"] == "7"


def test_another_parent_or_time_gives_other_tokens():
    assert mint().refresh != mint(parent_jti="b" * 32).refresh
    assert mint().refresh != mint(issued_at=ISSUED + timedelta(seconds=1)).refresh


def test_another_server_secret_gives_other_jtis(settings):
    before = successor_jti("a" * 32, "refresh")
    settings.SECRET_KEY = "another-secret-key-" + "x" * 40
    assert successor_jti("a" * 32, "refresh") != before
    assert re.fullmatch(r"[0-9a-f]{32}", before)


def test_a_login_pair_has_random_jtis():
    first, second = mint(parent_jti=None), mint(parent_jti=None)
    assert claims(first.refresh)["jti"] != claims(second.refresh)["jti"]
    assert claims(first.access)["jti"] != claims(second.access)["jti"]
