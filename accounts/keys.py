"""Signing key material: making, checking, publishing (JWK) and encrypting private keys."""

import base64
import functools
import hashlib
import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

# NIST SP 800-57 and RFC 7518 §3.3: RSA keys under 2,048 bits are no longer safe to sign.
MIN_RSA_BITS = 2048
# NIST SP 800-56B: a public exponent of at least 65537 (e = 3 invites broadcast attacks).
MIN_RSA_EXPONENT = 65537
# RFC 7518 §3.4: each ES* algorithm signs on one curve only.
CURVES = {"ES256": "secp256r1", "ES384": "secp384r1", "ES512": "secp521r1"}
CURVE_NAMES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
ALGORITHM_FOR_CURVE = {curve: algorithm for algorithm, curve in CURVES.items()}
# The public-key algorithms a key ring holds keys for (HS* signs with a shared secret).
ASYMMETRIC = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "EdDSA")
# The members of each key type's JWK that its RFC 7638 thumbprint hashes, in order.
THUMBPRINT_MEMBERS = {
    "RSA": ("e", "kty", "n"),
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
}


class UndecryptableKey(Exception):
    """A stored private key that no configured key-encryption key opens."""


def generate(algorithm: str):
    """A new private key for `algorithm`: RSA 2,048 bits, the algorithm's EC curve, or Ed25519."""
    if algorithm.startswith(("RS", "PS")):
        return rsa.generate_private_key(public_exponent=65537, key_size=MIN_RSA_BITS)
    if algorithm in CURVES:
        curve = {"ES256": ec.SECP256R1, "ES384": ec.SECP384R1, "ES512": ec.SECP521R1}[algorithm]
        return ec.generate_private_key(curve())
    if algorithm == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"{algorithm} is not a public-key algorithm")


def private_pem(key) -> str:
    """The private key as unencrypted PKCS#8 PEM (encrypt it before it is stored)."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def public_pem(key) -> str:
    """The public half of `key` (a private or public key) as SubjectPublicKeyInfo PEM."""
    public = key.public_key() if hasattr(key, "public_key") else key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


@functools.lru_cache(maxsize=64)
def load_private(pem: str):
    """A private key object from unencrypted PEM; cached: parsing an RSA key costs ~35 ms."""
    return serialization.load_pem_private_key(pem.encode(), password=None)


def load_public(pem: str):
    """A public key object from PEM."""
    return serialization.load_pem_public_key(pem.encode())


def public_jwk(public_key_pem: str, *, kid: str, algorithm: str) -> dict:
    """The public key as a JWK (RFC 7517) for a JWKS: `kty`, its members, `kid`, `alg`, `use`."""
    jwk = _to_jwk(load_public(public_key_pem))
    jwk.pop("key_ops", None)  # RFC 7517 §4.3: `use` and `key_ops` should not appear together
    return {**jwk, "kid": kid, "alg": algorithm, "use": "sig"}


def thumbprint(public_key_pem: str) -> str:
    """The key's RFC 7638 JWK thumbprint (SHA-256, base64url): its `kid`, the same everywhere."""
    jwk = _to_jwk(load_public(public_key_pem))
    members = {name: jwk[name] for name in THUMBPRINT_MEMBERS[jwk["kty"]]}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return _b64(hashlib.sha256(canonical).digest())


def secret_kid(secret: str) -> str:
    """A `kid` for an HMAC secret: RFC 7638's thumbprint of its `oct` JWK, a one-way hash."""
    k = _b64(secret.encode())
    canonical = json.dumps({"k": k, "kty": "oct"}, separators=(",", ":")).encode()
    return _b64(hashlib.sha256(canonical).digest())


def encrypt(pem: str, key_encryption_keys: list[str]) -> str:
    """Encrypt a private key PEM (Fernet: AES-128-CBC and HMAC-SHA256) with the first key."""
    return _fernet(key_encryption_keys).encrypt(pem.encode()).decode()


def decrypt(token: str, key_encryption_keys: list[str]) -> str:
    """The private key PEM back; any of the keys (current, then fallbacks) may open it."""
    try:
        return _fernet(key_encryption_keys).decrypt(token.encode()).decode()
    except InvalidToken:
        raise UndecryptableKey(
            "No key-encryption key opens this signing key (was KEY_ENCRYPTION_KEY changed "
            "without listing the old one in KEY_ENCRYPTION_KEY_FALLBACKS?)"
        ) from None


def _fernet(key_encryption_keys: list[str]) -> MultiFernet:
    """One Fernet per secret, each key derived with HKDF: any string of enough entropy works."""
    return MultiFernet([Fernet(_derive(secret)) for secret in key_encryption_keys])


def _derive(secret: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"accounts.signing-keys")
    return base64.urlsafe_b64encode(hkdf.derive(secret.encode()))


def _to_jwk(public_key) -> dict:
    if isinstance(public_key, rsa.RSAPublicKey):
        return RSAAlgorithm.to_jwk(public_key, as_dict=True)
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return ECAlgorithm.to_jwk(public_key, as_dict=True)
    return OKPAlgorithm.to_jwk(public_key, as_dict=True)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def fit_problems(algorithm: str, private, name: str = "The key") -> list[str]:
    """What is wrong with a private key for `algorithm` (type, size, curve); [] if nothing.

    Each problem says how to fix it. The public half is always derived from the private
    key, so the two cannot disagree.
    """
    family = algorithm[:2]
    if family in ("RS", "PS"):
        if not isinstance(private, rsa.RSAPrivateKey):
            return [f"{name} must be an RSA key for {algorithm} (got {_kind(private)})"]
        if private.public_key().public_numbers().e < MIN_RSA_EXPONENT:
            return [
                f"{name} has public exponent {private.public_key().public_numbers().e}: use "
                f"{MIN_RSA_EXPONENT} (what `openssl genpkey -algorithm RSA` makes)"
            ]
        if private.key_size < MIN_RSA_BITS:
            return [
                f"{name} is a {private.key_size}-bit RSA key: {algorithm} needs at least "
                f"{MIN_RSA_BITS} bits (`openssl genpkey -algorithm RSA "
                "-pkeyopt rsa_keygen_bits:3072`)"
            ]
        return []
    if family == "ES":
        if not isinstance(private, ec.EllipticCurvePrivateKey):
            return [f"{name} must be an EC key for {algorithm} (got {_kind(private)})"]
        curve, wanted = private.curve.name, CURVE_NAMES[CURVES[algorithm]]
        if curve != CURVES[algorithm]:
            fix = ALGORITHM_FOR_CURVE.get(curve)
            return [
                f"{name} is an EC key on {CURVE_NAMES.get(curve, curve)}, but {algorithm} signs "
                f"on {wanted}: generate a {wanted} key (`openssl genpkey -algorithm EC "
                f"-pkeyopt ec_paramgen_curve:{wanted}`)"
                + (f" or set JWT_ALGORITHM={fix}" if fix else "")
            ]
        return []
    if algorithm == "EdDSA":
        # Ed25519 only: what every JOSE library verifying EdDSA supports (RFC 8037).
        if not isinstance(private, ed25519.Ed25519PrivateKey):
            return [f"{name} must be an Ed25519 key for EdDSA (got {_kind(private)})"]
        return []
    return [f"{algorithm} is not an algorithm this API signs with"]


def _kind(key) -> str:
    """A key's type as a person names it: RSA, EC, Ed25519..."""
    for kind, types in (
        ("RSA", rsa.RSAPrivateKey),
        ("EC", ec.EllipticCurvePrivateKey),
        ("Ed25519", ed25519.Ed25519PrivateKey),
        ("Ed448", ed448.Ed448PrivateKey),
    ):
        if isinstance(key, types):
            return f"an {kind} key"  # all read with a vowel first: an RSA, an EC, an Ed25519
    return type(key).__name__
