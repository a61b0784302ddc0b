"""Page tokens: they continue only the listing they came from, and cannot be made by hand."""

from __future__ import annotations

import base64
import json

import pytest

from server.errors import InvalidArgumentError
from server.page_tokens import PageTokens

KEY = b"k" * 32
SCOPE = ("", "*")
tokens = PageTokens(lambda: (KEY,))


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


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_edited_payload_is_refused() -> None:
    token = tokens.encode(("apps", "api"), SCOPE)
    forged = _b64(json.dumps(["batch", "jobs"]).encode()) + token[token.index(".") :]
    with pytest.raises(InvalidArgumentError):
        tokens.decode(forged, SCOPE)


@pytest.mark.parametrize(
    "token",
    [
        "%%%",
        "e30",
        "eyJucyI6IkEiLCJuYW1lIjoiYiJ9",  # the old unsigned format: {"ns":"A","name":"b"}
        _b64(b'["apps","api"]') + "." + _b64(b"\0" * 16),  # a guessed tag
        _b64(b'["apps","api"]') + ".",
        "x" * 2000,
    ],
)
def test_hand_made_tokens_are_refused(token: str) -> None:
    with pytest.raises(InvalidArgumentError):
        tokens.decode(token, SCOPE)


def test_tokens_of_the_previous_key_survive_one_rotation() -> None:
    keys = [KEY]
    rotating = PageTokens(lambda: tuple(keys))
    token = rotating.encode(("apps", "api"), SCOPE)
    keys.insert(0, b"n" * 32)  # a new TLS key: the old one is still accepted
    accepted = rotating.decode(token, SCOPE)
    keys.pop()  # a second rotation
    with pytest.raises(InvalidArgumentError):
        rotating.decode(token, SCOPE)
    assert accepted == ("apps", "api")


def test_replicas_sharing_a_key_accept_each_others_tokens() -> None:
    one, other = PageTokens(lambda: (KEY,)), PageTokens(lambda: (KEY,))
    assert other.decode(one.encode(("apps", "api"), SCOPE), SCOPE) == ("apps", "api")
