"""The API as seen from here: its RFC 8414 metadata, its keys (JWKS) and RFC 7662 introspection."""

import base64
import http.client
import json
import logging
import threading
import urllib.request
from urllib.error import HTTPError, URLError
from urllib.parse import quote_plus, urlencode, urlsplit

from jwt import PyJWKClient
from jwt.exceptions import PyJWKClientConnectionError, PyJWKClientError, PyJWKSetError

log = logging.getLogger("resource_server")

MAX_ANSWER_BYTES = 1 << 20


class Unavailable(Exception):
    """The API cannot answer now (down, slow, refusing us, or answering nonsense): say 503."""


class UnknownKey(Exception):
    """No published key has this kid, even after fetching the JWKS again."""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Never follow a redirect: it would carry our client credentials to another address."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def _request(url: str, **options) -> urllib.request.Request:
    """A request to an http(s) URL, never file: or another scheme urllib would open."""
    if urlsplit(url).scheme not in ("http", "https"):
        raise Unavailable(f"not an http(s) URL: {url!r}")
    return urllib.request.Request(url, **options)  # noqa: S310 (the scheme is checked)


def metadata_url(issuer: str) -> str:
    """RFC 8414 §3.1: the well-known segment goes between the host and the issuer's path."""
    parts = urlsplit(issuer)
    return f"{parts.scheme}://{parts.netloc}/.well-known/oauth-authorization-server{parts.path}"


class Issuer:
    """Fetches the metadata on first use and keeps it; keys and introspection come from it."""

    def __init__(self, config) -> None:
        self._config = config
        self._lock = threading.Lock()
        self._metadata: dict | None = None
        self._keys: PyJWKClient | None = None

    def metadata(self) -> dict:
        """The API's metadata; Unavailable until it has been fetched and checked once."""
        with self._lock:
            if self._metadata is None:
                metadata = self._json(_request(metadata_url(self._config.issuer)))
                self._check(metadata)
                # PyJWKClient caches the key set (5 minutes), refetches it once for an
                # unknown kid, and at most once per cooldown so junk kids cannot make us
                # hammer the API.
                self._keys = PyJWKClient(
                    metadata["jwks_uri"],
                    timeout=self._config.http_timeout_seconds,
                    cooldown_duration=self._config.jwks_cooldown_seconds,
                )
                self._metadata = metadata
                log.info(
                    "issuer metadata: jwks_uri %s, introspection_endpoint %s",
                    metadata["jwks_uri"],
                    metadata["introspection_endpoint"],
                )
            return self._metadata

    @property
    def identifier(self) -> str:
        """The `iss` every token and event must carry, as the API itself states it."""
        return self.metadata()["issuer"]

    def signing_key(self, kid: str):
        """The public key published under this kid (refetching the JWKS once if unknown)."""
        self.metadata()
        try:
            return self._keys.get_signing_key(kid).key
        except PyJWKClientConnectionError as error:
            raise Unavailable(f"JWKS unreachable: {error}") from None
        except (PyJWKSetError, ValueError) as error:  # ValueError: not JSON
            raise Unavailable(f"JWKS unusable: {type(error).__name__}") from None
        except PyJWKClientError:
            # The kid is the caller's text: quoted, and cut short, in every log line.
            raise UnknownKey(f"no published key has kid {kid[:64]!r}") from None

    def introspect(self, token: str) -> bool:
        """Ask the API whether this token is active now (RFC 7662); never cached."""
        url = self.metadata()["introspection_endpoint"]
        # RFC 6749 §2.3.1: both halves are form-encoded before they are joined.
        pair = f"{quote_plus(self._config.client_id)}:{quote_plus(self._config.client_secret)}"
        request = _request(
            url,
            data=urlencode({"token": token, "token_type_hint": "access_token"}).encode(),
            headers={
                "Authorization": "Basic " + base64.b64encode(pair.encode()).decode(),
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
            method="POST",
        )
        answer = self._json(request)
        if not isinstance(answer.get("active"), bool):
            raise Unavailable("introspection answered without a boolean 'active'")
        return answer["active"]

    def _json(self, request: urllib.request.Request) -> dict:
        """Send it, and return the JSON object answered; Unavailable for anything else."""
        url = request.full_url
        try:
            with _opener.open(request, timeout=self._config.http_timeout_seconds) as response:
                answer = json.loads(response.read(MAX_ANSWER_BYTES))
        except HTTPError as error:
            error.close()
            raise Unavailable(f"{url} answered {error.code}") from None
        except (OSError, http.client.HTTPException, ValueError) as error:
            # OSError covers URLError, refused connections and timeouts; ValueError bad JSON.
            reason = error.reason if isinstance(error, URLError) else error
            raise Unavailable(f"{url} unreachable: {reason!r}") from None
        if not isinstance(answer, dict):
            raise Unavailable(f"{url} did not answer a JSON object")
        return answer

    def _check(self, metadata: dict) -> None:
        """RFC 8414 §3.3: the metadata must name the issuer we asked, and absolute endpoints."""
        if str(metadata.get("issuer", "")).rstrip("/") != self._config.issuer:
            raise Unavailable(
                f"metadata names issuer {metadata.get('issuer')!r}, not {self._config.issuer!r}"
            )
        for name in ("jwks_uri", "introspection_endpoint"):
            value = metadata.get(name)
            if not isinstance(value, str) or urlsplit(value).scheme not in ("http", "https"):
                raise Unavailable(f"metadata has no absolute http(s) {name}")
