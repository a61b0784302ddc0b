"""ListDeployments page tokens: bound to the listing they continue, and tamper-evident.

A token is `base64url(payload).base64url(tag)`: the payload is JSON [namespace, name] of the last
Deployment served (the caller has seen it), the tag an HMAC-SHA256 over the payload and the scope:
the request's namespace filter and the caller's read grant. A token used with another filter or
grant, edited, or made by hand fails the check: INVALID_ARGUMENT. Nothing is stored, so any replica
can continue a listing another started.

The key must be the same on every replica and never rendered by the chart, so it is derived (HKDF)
from the server's TLS private key, which every replica mounts from one Secret (server/tls.py). A
new key (cert-manager renews with a fresh one) invalidates earlier tokens; the previous key stays
accepted until the next change, so a listing survives one rotation on the replica that rotated.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import TYPE_CHECKING, Final

from server.errors import InvalidArgumentError
from server.validation import is_label, is_subdomain

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from kube.informer import Key

MAX_TOKEN_LEN: Final = 1024
TAG_BYTES: Final = 16  # 128-bit truncated HMAC: forging one means guessing 2**128 values
_DOMAIN: Final = b"replicant page token v1\x00"


class PageTokens:
    """Signs and checks tokens with the keys `keys()` returns (first signs, all verify)."""

    def __init__(self, keys: Callable[[], Sequence[bytes]]) -> None:
        self._keys = keys

    def encode(self, key: Key, scope: Sequence[str]) -> str:
        payload = _b64(json.dumps(list(key), separators=(",", ":")).encode())
        return f"{payload}.{_b64(_tag(self._keys()[0], payload, scope))}"

    def decode(self, token: str, scope: Sequence[str]) -> Key | None:
        """The last key of the previous page, None for "start", or InvalidArgumentError."""
        if not token:
            return None
        invalid = InvalidArgumentError(
            "page_token is invalid for this request; pass next_page_token back unchanged, "
            "with the same namespace"
        )
        payload, _, tag = token.partition(".")
        if len(token) > MAX_TOKEN_LEN or not payload or not tag:
            raise invalid
        try:
            given = _unb64(tag)
            if not any(hmac.compare_digest(given, _tag(k, payload, scope)) for k in self._keys()):
                raise invalid
            parsed = json.loads(_unb64(payload))
        except (binascii.Error, ValueError) as exc:
            raise invalid from exc
        if not (isinstance(parsed, list) and len(parsed) == 2):  # [namespace, name]
            raise invalid
        ns, name = parsed
        if not (isinstance(ns, str) and isinstance(name, str)):
            raise invalid
        if not (is_label(ns) and is_subdomain(name)):
            raise invalid
        return ns, name


def _tag(key: bytes, payload: str, scope: Sequence[str]) -> bytes:
    message = _DOMAIN + json.dumps([payload, *scope], separators=(",", ":")).encode()
    return hmac.new(key, message, hashlib.sha256).digest()[:TAG_BYTES]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
