"""Grants: one syntax for --readers/--writers, checked at start; writers also read."""

from __future__ import annotations

import pytest

from server import authz, config
from server.authz import Grant, Policy
from server.errors import PermissionDeniedError

ALL = Grant(None)


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        (["spiffe://x/a"], {"spiffe://x/a": ALL}),
        (["spiffe://x/a=apps"], {"spiffe://x/a": Grant(frozenset({"apps"}))}),
        (
            ["spiffe://x/a=apps", "spiffe://x/a=batch"],
            {"spiffe://x/a": Grant(frozenset({"apps", "batch"}))},
        ),
        (["ops.example=apps", "ops.example"], {"ops.example": ALL}),
        ([], {}),
    ],
)
def test_grant_entries_parse(entries: list[str], expected: dict[str, Grant]) -> None:
    assert authz.parse_grants(entries) == expected


@pytest.mark.parametrize(
    ("entry", "watched"),
    [
        ("spiffe://x/a=Bad_NS", ()),
        ("spiffe://x/a=", ()),
        ("=apps", ()),
        ("spiffe://x/a b", ()),
        ("spiffe://x/a=other", ("apps",)),  # not a watched namespace
    ],
)
def test_bad_grant_entries_are_refused(entry: str, watched: tuple[str, ...]) -> None:
    assert authz.grant_problem(entry, watched)


def test_bad_grant_stops_the_start_with_a_clear_message() -> None:
    with pytest.raises(config.ConfigError, match="namespace 'batch' is not watched"):
        config.parse(["--namespaces", "apps", "--readers", "spiffe://x/a=batch"])


def test_writer_grant_is_also_a_reader_grant() -> None:
    policy = Policy(authz.parse_grants(["w=batch"]), authz.parse_grants(["w=apps"]))
    caller = policy.caller("w")
    assert caller.read == Grant(frozenset({"apps", "batch"}))
    assert caller.write == Grant(frozenset({"apps"}))


@pytest.mark.parametrize(
    ("method", "who", "allowed"),
    [
        ("/replicant.v1.ReplicaService/GetReplicas", "r", True),
        ("/replicant.v1.ReplicaService/SetReplicas", "r", False),
        ("/replicant.v1.ReplicaService/SetReplicas", "w", True),
        ("/replicant.v1.ReplicaService/GetReplicas", "nobody", False),
        ("/grpc.health.v1.Health/Check", "nobody", True),
    ],
)
def test_interceptor_check_needs_the_role_somewhere(method: str, who: str, allowed: bool) -> None:
    policy = Policy(authz.parse_grants(["r=apps"]), authz.parse_grants(["w=batch"]))
    if allowed:
        policy.authorize(method, policy.caller(who))
    else:
        with pytest.raises(PermissionDeniedError):
            policy.authorize(method, policy.caller(who))


def test_default_leader_identity_is_unique_per_process() -> None:
    first, second = config.default_identity(), config.default_identity()
    assert first != second
    assert first.rsplit("_", 1)[0] == second.rsplit("_", 1)[0]  # the hostname
