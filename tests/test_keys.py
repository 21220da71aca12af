"""Signing keys: a weak key, a wrong curve or a mismatched pair is refused, naming the fix."""

import subprocess

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from accounts.checks import signing_key
from accounts.keys import key_problems
from tests.test_settings import GOOD_SECRETS, manage


def pem_pair(private) -> tuple[str, str]:
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private_pem, public_pem


def rsa_pair(bits: int) -> tuple[str, str]:
    return pem_pair(rsa.generate_private_key(public_exponent=65537, key_size=bits))


def ec_pair(curve) -> tuple[str, str]:
    return pem_pair(ec.generate_private_key(curve))


def openssl_rsa_512() -> tuple[str, str]:
    """The review's key: 512 bits, which the cryptography package will not even generate."""
    private = subprocess.run(
        ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:512"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    key = serialization.load_pem_private_key(private.encode(), password=None)
    return pem_pair(key)


def test_a_good_pair_of_each_family_passes():
    assert key_problems("RS256", *rsa_pair(2048)) == []
    assert key_problems("ES256", *ec_pair(ec.SECP256R1())) == []
    assert key_problems("ES384", *ec_pair(ec.SECP384R1())) == []
    assert key_problems("EdDSA", *pem_pair(ed25519.Ed25519PrivateKey.generate())) == []
    assert key_problems("HS256", "any secret", "") == []


@pytest.mark.parametrize("pair", [openssl_rsa_512, lambda: rsa_pair(1024)], ids=["512", "1024"])
def test_an_rsa_key_under_2048_bits_refused(pair):
    [problem] = key_problems("RS256", *pair())
    assert "RSA key: RS256 needs at least 2048 bits" in problem
    assert "rsa_keygen_bits" in problem  # says how to make a good one


def test_an_ec_key_on_another_curve_refused_naming_both_fixes():
    [problem] = key_problems("ES256", *ec_pair(ec.SECP384R1()))
    assert "EC key on P-384, but ES256 signs on P-256" in problem
    assert "ec_paramgen_curve:P-256" in problem and "JWT_ALGORITHM=ES384" in problem


def test_a_key_of_another_family_refused():
    [problem] = key_problems("ES256", *rsa_pair(2048))
    assert problem == "JWT_SIGNING_KEY must be an EC key for ES256 (got an RSA key)"
    [problem] = key_problems("EdDSA", *ec_pair(ec.SECP256R1()))
    assert "must be an Ed25519 key for EdDSA (got an EC key)" in problem


def test_a_verifying_key_that_is_not_the_signing_keys_public_half_refused():
    private_pem, _ = rsa_pair(2048)
    _, other_public = rsa_pair(2048)
    [problem] = key_problems("RS256", private_pem, other_public)
    assert "JWT_VERIFYING_KEY is not the public half of JWT_SIGNING_KEY" in problem
    assert "openssl pkey -in private.pem -pubout" in problem


def test_what_is_no_key_at_all_refused():
    assert key_problems("RS256", "not a key", "") == [
        "JWT_SIGNING_KEY must be an unencrypted PEM private key for RS256"
    ]
    private_pem, _ = rsa_pair(2048)
    assert key_problems("RS256", private_pem, "nope") == [
        "JWT_VERIFYING_KEY must be a PEM public key for RS256"
    ]


def test_start_up_refuses_a_weak_key():
    private_pem, public_pem = openssl_rsa_512()
    env = {**GOOD_SECRETS, "JWT_SIGNING_KEY": private_pem, "JWT_VERIFYING_KEY": public_pem}
    result = manage("check", DEBUG="0", JWT_ALGORITHM="RS256", **env)
    assert result.returncode != 0
    assert "512-bit RSA key: RS256 needs at least 2048 bits" in result.stderr


def test_start_up_refuses_a_p384_key_for_es256():
    """The review's second key: it started, then every login answered 500."""
    private_pem, public_pem = ec_pair(ec.SECP384R1())
    env = {**GOOD_SECRETS, "JWT_SIGNING_KEY": private_pem, "JWT_VERIFYING_KEY": public_pem}
    result = manage("check", DEBUG="0", JWT_ALGORITHM="ES256", **env)
    assert result.returncode != 0
    assert "EC key on P-384, but ES256 signs on P-256" in result.stderr


def test_the_system_check_catches_a_host_projects_bad_key(settings):
    """A project installing the app has its own settings: `manage.py check` still refuses."""
    private_pem, _ = rsa_pair(1024)
    settings.SIMPLE_JWT = {"ALGORITHM": "RS256", "SIGNING_KEY": private_pem, "VERIFYING_KEY": ""}
    errors = signing_key(None)
    assert [error.id for error in errors] == ["accounts.E002", "accounts.E002"]
    assert "1024-bit RSA key" in errors[0].msg
