"""Page tokens: they continue only the listing (filter and grant) they came from."""

from __future__ import annotations

import base64
import json

import pytest

from server import page_tokens as tokens
from server.errors import InvalidArgumentError

SCOPE = ("", "*")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize("key", [("a", "b"), ("kube-system", "x.y-z"), ("n" * 63, "d" * 253)])
def test_page_token_round_trips(key: tuple[str, str]) -> None:
    assert tokens.decode(tokens.encode(key, SCOPE), SCOPE) == key


def test_empty_token_starts_the_listing() -> None:
    assert tokens.decode("", SCOPE) is None


@pytest.mark.parametrize(
    "scope",
    [
        ("apps", "*"),  # another namespace filter
        ("", "apps"),  # another grant
        ("", "apps,batch"),
    ],
)
def test_page_token_is_bound_to_filter_and_grant(scope: tuple[str, str]) -> None:
    token = tokens.encode(("apps", "api"), SCOPE)
    with pytest.raises(InvalidArgumentError):
        tokens.decode(token, scope)


@pytest.mark.parametrize(
    "token",
    [
        "%%%",
        "e30",
        _b64(b'["apps","api"]'),  # no scope
        _b64(b'["apps","api","","*","x"]'),
        _b64(b'["Apps","api","","*"]'),  # not a namespace name
        _b64(b'[1,"api","","*"]'),
        _b64(b'{"ns":"apps"}'),
        "x" * 2000,
    ],
)
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(InvalidArgumentError):
        tokens.decode(token, SCOPE)


def test_a_hand_made_token_in_scope_only_moves_the_start() -> None:
    made = _b64(json.dumps(["batch", "jobs", *SCOPE]).encode())
    assert tokens.decode(made, SCOPE) == ("batch", "jobs")
