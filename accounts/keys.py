"""Signing key material: what a key must be for the algorithm it signs with."""

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

# NIST SP 800-57 and RFC 7518 §3.3: RSA keys under 2,048 bits are no longer safe to sign.
MIN_RSA_BITS = 2048
# RFC 7518 §3.4: each ES* algorithm signs on one curve only.
CURVES = {"ES256": "secp256r1", "ES384": "secp384r1", "ES512": "secp521r1"}
CURVE_NAMES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
ALGORITHM_FOR_CURVE = {curve: algorithm for algorithm, curve in CURVES.items()}


def key_problems(algorithm: str, private_pem: str, public_pem: str, *, names=None) -> list[str]:
    """What is wrong with a PEM key pair for `algorithm`, each saying how to fix it; [] if none.

    `names` are how the two keys are called in the messages (the settings they come from).
    HMAC algorithms (HS*) take a secret, not a key pair: nothing to check here.
    """
    private_name, public_name = names or ("JWT_SIGNING_KEY", "JWT_VERIFYING_KEY")
    if algorithm.startswith("HS"):
        return []
    try:
        private = serialization.load_pem_private_key(private_pem.encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return [f"{private_name} must be an unencrypted PEM private key for {algorithm}"]
    problems = _fit_problems(algorithm, private, private_name)
    try:
        public = serialization.load_pem_public_key(public_pem.encode())
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return [*problems, f"{public_name} must be a PEM public key for {algorithm}"]
    if public_bytes(public) != public_bytes(private.public_key()):
        problems.append(
            f"{public_name} is not the public half of {private_name}: derive it with "
            "`openssl pkey -in private.pem -pubout`"
        )
    return problems


def public_bytes(key) -> bytes:
    """A public key's SubjectPublicKeyInfo DER: equal bytes, equal keys."""
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _fit_problems(algorithm: str, private, name: str) -> list[str]:
    """Whether the private key's type and size fit `algorithm`."""
    family = algorithm[:2]
    if family in ("RS", "PS"):
        if not isinstance(private, rsa.RSAPrivateKey):
            return [f"{name} must be an RSA key for {algorithm} (got {_kind(private)})"]
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
        if not isinstance(private, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)):
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
