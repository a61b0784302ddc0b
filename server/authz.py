"""Roles per namespace (requirement: an authorization scheme): who may read and who may set, where.

Roles: reader (GetReplicas, ListDeployments) and writer (reader + SetReplicas). Grants, for
--readers/--writers, are comma-separated `IDENTITY` (every watched namespace) or
`IDENTITY=NAMESPACE` entries, so identities cannot contain `=` (SPIFFE IDs and DNS names never do).
The interceptor refuses a caller with no role anywhere; the servicer answers outside the grant
exactly as for a Deployment that does not exist (docs/design.md, "Identity").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Literal

from server.errors import PermissionDeniedError
from server.validation import is_label

SERVICE: Final = "replicant.v1.ReplicaService"


METHOD_ROLES: Final[Mapping[str, Literal["reader", "writer"]]] = {
    f"/{SERVICE}/GetReplicas": "reader",
    f"/{SERVICE}/ListDeployments": "reader",
    f"/{SERVICE}/SetReplicas": "writer",
}

AuthContext = Mapping[str, Iterable[bytes]]

# A certificate SAN (URI or DNS name) as configured for a role; generous, but bounded.
MAX_PRINCIPAL_LEN: Final = 1024
# TLS versions accepted for RPCs, as grpc names them in `ssl_tls_version`.
ALLOWED_TLS_VERSIONS: Final = frozenset({"TLSv1.3"})


def tls_version(auth_context: AuthContext) -> str:
    for value in auth_context.get("ssl_tls_version", ()):
        return value.decode("ascii", "replace")
    return ""


@dataclass(frozen=True)
class Grant:
    """Namespaces a role covers; `namespaces=None` means every watched namespace."""

    namespaces: frozenset[str] | None = frozenset()

    def allows(self, namespace: str) -> bool:
        return self.namespaces is None or namespace in self.namespaces

    @property
    def any(self) -> bool:
        return self.namespaces is None or bool(self.namespaces)

    def fingerprint(self) -> str:
        """A stable text naming the grant (page tokens are bound to it)."""
        return "*" if self.namespaces is None else ",".join(sorted(self.namespaces))

    def union(self, other: Grant) -> Grant:
        if self.namespaces is None or other.namespaces is None:
            return Grant(None)
        return Grant(self.namespaces | other.namespaces)


NO_GRANT: Final = Grant()


@dataclass(frozen=True)
class Caller:
    """The identity of one call and what it may touch."""

    identity: str
    read: Grant = NO_GRANT
    write: Grant = NO_GRANT


def parse_grants(entries: Iterable[str]) -> dict[str, Grant]:
    """Grants by identity from `IDENTITY[=NAMESPACE]` entries (server/config.py has checked them
    with `grant_problem`)."""
    grants: dict[str, Grant] = {}
    for entry in entries:
        identity, sep, namespace = entry.strip().rpartition("=")
        grant = Grant(frozenset({namespace})) if sep else Grant(None)
        identity = identity if sep else namespace
        grants[identity] = grants.get(identity, NO_GRANT).union(grant)
    return grants


def grant_problem(entry: str, watched: Iterable[str] = ()) -> str:
    """What is wrong with one grant entry, or "" when it is valid."""
    identity, sep, namespace = entry.strip().rpartition("=")
    if not sep:
        identity, namespace = namespace, ""
    if not 0 < len(identity) <= MAX_PRINCIPAL_LEN or any(not "!" <= ch <= "~" for ch in identity):
        return f"the identity must be 1..{MAX_PRINCIPAL_LEN} printable ASCII characters"
    if not sep:
        return ""
    if not is_label(namespace):
        return f"{namespace!r} is not a namespace name"
    watched_set = frozenset(watched)
    if watched_set and namespace not in watched_set:
        return f"namespace {namespace!r} is not watched"
    return ""


@dataclass(frozen=True)
class Policy:
    """Which identities hold which role, where (from --readers/--writers)."""

    readers: Mapping[str, Grant]
    writers: Mapping[str, Grant]

    def caller(self, identity: str) -> Caller:
        write = self.writers.get(identity, NO_GRANT)
        return Caller(identity, self.readers.get(identity, NO_GRANT).union(write), write)

    def authorize(self, method: str, caller: Caller) -> None:
        """Raise PermissionDeniedError unless the caller holds the role `method` needs somewhere."""
        needed = METHOD_ROLES.get(method)
        if needed is None:
            return  # health, reflection: an accepted certificate is enough
        grant = caller.write if needed == "writer" else caller.read
        if not grant.any:
            raise PermissionDeniedError(f"caller has no {needed} role")
