"""Event names: a legal object name of any length gives a legal, unique Event name."""

from __future__ import annotations

import re

import pytest

from kube.scale import event_name

# A DNS subdomain (RFC 1123), as the API server validates metadata.name.
DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


@pytest.mark.parametrize(
    "object_name",
    [
        "web",
        "a" * 236,
        "a" * 237,  # the first length that overflowed before
        "a" * 253,
        "a" * 235 + "-" + "b" * 17,  # the cut falls right after a dash
        "a" * 235 + "." + "b" * 17,  # ... or a dot
    ],
    ids=["short", "236", "237", "253", "cut-at-dash", "cut-at-dot"],
)
def test_event_name_is_a_dns_subdomain_of_at_most_253_characters(object_name: str) -> None:
    name = event_name(object_name)

    assert len(name) <= 253
    assert DNS_SUBDOMAIN.fullmatch(name), name
    assert name.startswith(object_name[:200])


def test_event_names_of_one_object_differ() -> None:
    assert event_name("a" * 253) != event_name("a" * 253)
