"""Signing keys: a weak key, a curve or a family the algorithm does not sign with is refused."""

import io
import subprocess

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from django.core.management import CommandError, call_command

from accounts import keys
from accounts.checks import signing_configuration
from accounts.models import SigningKey


def openssl_key(*options: str) -> str:
    """A PEM private key made by openssl, as an operator would make one."""
    return subprocess.run(
        ["openssl", "genpkey", *options], capture_output=True, text=True, check=True
    ).stdout


def test_a_good_key_of_each_family_passes():
    assert keys.fit_problems("RS256", rsa.generate_private_key(65537, 2048)) == []
    assert keys.fit_problems("ES256", ec.generate_private_key(ec.SECP256R1())) == []
    assert keys.fit_problems("ES384", ec.generate_private_key(ec.SECP384R1())) == []
    assert keys.fit_problems("EdDSA", ed25519.Ed25519PrivateKey.generate()) == []


@pytest.mark.parametrize("bits", [512, 1024])
def test_an_rsa_key_under_2048_bits_refused(bits):
    weak = keys.load_private(
        openssl_key("-algorithm", "RSA", "-pkeyopt", f"rsa_keygen_bits:{bits}")
    )
    [problem] = keys.fit_problems("RS256", weak)
    assert f"{bits}-bit RSA key: RS256 needs at least 2048 bits" in problem
    assert "rsa_keygen_bits" in problem  # says how to make a good one


def test_an_ec_key_on_another_curve_refused_naming_both_fixes():
    [problem] = keys.fit_problems("ES256", ec.generate_private_key(ec.SECP384R1()))
    assert "EC key on P-384, but ES256 signs on P-256" in problem
    assert "ec_paramgen_curve:P-256" in problem and "JWT_ALGORITHM=ES384" in problem


def test_a_key_of_another_family_refused():
    [problem] = keys.fit_problems("ES256", rsa.generate_private_key(65537, 2048))
    assert problem == "The key must be an EC key for ES256 (got an RSA key)"
    [problem] = keys.fit_problems("EdDSA", ec.generate_private_key(ec.SECP256R1()))
    assert "must be an Ed25519 key for EdDSA (got an EC key)" in problem


@pytest.mark.django_db
def test_importing_the_reviews_512_bit_key_refused(monkeypatch):
    """The review started the API with a 512-bit RS256 key; it can no longer sign with one."""
    pem = openssl_key("-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:512")
    monkeypatch.setattr("sys.stdin", io.StringIO(pem))
    with pytest.raises(CommandError, match="512-bit RSA key: RS256 needs at least 2048 bits"):
        call_command("signing_keys", "add", "--from-file", "-")
    assert not SigningKey.objects.exists()


@pytest.mark.django_db
def test_importing_a_p384_key_for_es256_refused(monkeypatch, settings):
    """The review's ES256 with a P-384 key started, then every login answered 500."""
    settings.ACCOUNTS = {**settings.ACCOUNTS, "SIGNING_ALGORITHM": "ES256"}
    pem = openssl_key("-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384")
    monkeypatch.setattr("sys.stdin", io.StringIO(pem))
    with pytest.raises(CommandError, match="EC key on P-384, but ES256 signs on P-256"):
        call_command("signing_keys", "add", "--from-file", "-")
    assert not SigningKey.objects.exists()


@pytest.mark.django_db
def test_importing_a_good_key_stages_it_encrypted(monkeypatch):
    pem = openssl_key("-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048")
    monkeypatch.setattr("sys.stdin", io.StringIO(pem))
    out = io.StringIO()
    call_command("signing_keys", "add", "--from-file", "-", stdout=out)
    key = SigningKey.objects.get()
    assert key.state == "staged" and key.kid in out.getvalue()
    assert "PRIVATE KEY" not in key.encrypted_private_key
    body = pem.split("-----")[2].replace("\n", "")
    assert body[:40] not in key.encrypted_private_key


def test_production_without_issuer_or_key_encryption_key_fails_the_checks(settings):
    """A project that installs the app refuses, through `manage.py check`, to run so."""
    settings.DEBUG = False
    settings.ACCOUNTS = {"SIGNING_ALGORITHM": "RS256"}
    assert [error.id for error in signing_configuration(None)] == ["accounts.E003", "accounts.E004"]
    settings.ACCOUNTS = {"ISSUER": "https://api.example.com", "KEY_ENCRYPTION_KEY": "k" * 50}
    assert signing_configuration(None) == []
    settings.DEBUG = True
    settings.ACCOUNTS = {}
    assert signing_configuration(None) == []  # development has defaults for both


def test_an_rsa_key_with_a_small_public_exponent_refused():
    weak = keys.load_private(
        openssl_key(
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-pkeyopt",
            "rsa_keygen_pubexp:3",
        )
    )
    [problem] = keys.fit_problems("RS256", weak)
    assert "public exponent 3: use 65537" in problem


def test_eddsa_takes_ed25519_only():
    from cryptography.hazmat.primitives.asymmetric import ed448

    [problem] = keys.fit_problems("EdDSA", ed448.Ed448PrivateKey.generate())
    assert "must be an Ed25519 key for EdDSA (got an Ed448 key)" in problem


@pytest.mark.django_db
def test_a_key_of_another_algorithm_is_never_activated(settings, tokens):
    """The review added an EdDSA key beside RS256 ones and made it sign: verifiers pinned
    to RS256 would have refused every new token."""
    settings.ACCOUNTS = {**settings.ACCOUNTS, "SIGNING_ALGORITHM": "EdDSA"}
    call_command("signing_keys", "add", stdout=io.StringIO())
    eddsa = SigningKey.objects.get(algorithm="EdDSA")
    settings.ACCOUNTS = {**settings.ACCOUNTS, "SIGNING_ALGORITHM": "RS256"}
    with pytest.raises(CommandError, match="signs EdDSA, but JWT_ALGORITHM is RS256"):
        call_command("signing_keys", "activate", eddsa.kid, "--now")
    assert SigningKey.objects.get(state="active").algorithm == "RS256"
