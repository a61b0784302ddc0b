"""ListDeployments page tokens (requirement: list Deployments, paginated): an unsigned cursor.

A token is base64url of JSON [namespace, name, filter, grant]: the last Deployment served (the
caller has seen it) and the scope it was served in, the request's namespace filter and the
caller's read grant. It continues only a listing with the same scope (compared for equality),
else INVALID_ARGUMENT. It needs no signature: the servicer applies the grant to every page, so a
token edited or made by hand can only move the start of a listing the caller may see anyway.
Nothing is stored, so any replica continues a listing another started, across key rotations.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import TYPE_CHECKING, Final

from server.errors import InvalidArgumentError
from server.validation import is_label, is_subdomain

if TYPE_CHECKING:
    from collections.abc import Sequence

    from kube.informer import Key

MAX_TOKEN_LEN: Final = 1024


def encode(key: Key, scope: Sequence[str]) -> str:
    raw = json.dumps([*key, *scope], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(token: str, scope: Sequence[str]) -> Key | None:
    """The last key of the previous page, None for "start", or InvalidArgumentError."""
    if not token:
        return None
    invalid = InvalidArgumentError(
        "page_token is invalid for this request; pass next_page_token back unchanged, "
        "with the same namespace"
    )
    if len(token) > MAX_TOKEN_LEN:
        raise invalid
    try:
        parsed = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError) as exc:
        raise invalid from exc
    if not (isinstance(parsed, list) and len(parsed) == 2 + len(scope)):
        raise invalid
    ns, name, *given = parsed
    if given != list(scope) or not (isinstance(ns, str) and isinstance(name, str)):
        raise invalid
    if not (is_label(ns) and is_subdomain(name)):
        raise invalid
    return ns, name
