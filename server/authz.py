"""Caller identity from the verified client certificate, and role-based authorization.

Identity: the first URI SAN of the client certificate, else its first DNS SAN; the CN is ignored.
grpc (1.85) exposes the verified peer's SANs by type in the auth context: `peer_uri` (and
`peer_spiffe_id`) for URI SANs and `peer_dns` for DNS SANs, in certificate order
("x509_subject_alternative_name" mixes all types, so it is not used). The TLS handshake has
already verified the chain against the client CA; nothing here parses certificates.

Roles: reader (GetReplicas, ListDeployments) and writer (reader + SetReplicas). Health and
reflection need only a valid client certificate. Denial happens before validation or lookups, so a
caller without a role learns nothing about which Deployments exist.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from server.errors import PermissionDeniedError

SERVICE: Final = "replicant.v1.ReplicaService"


class Role(enum.Enum):
    READER = "reader"
    WRITER = "writer"


METHOD_ROLES: Final[Mapping[str, Role]] = {
    f"/{SERVICE}/GetReplicas": Role.READER,
    f"/{SERVICE}/ListDeployments": Role.READER,
    f"/{SERVICE}/SetReplicas": Role.WRITER,
}

AuthContext = Mapping[str, Iterable[bytes]]

# TLS versions accepted for RPCs, as grpc names them in `ssl_tls_version`.
ALLOWED_TLS_VERSIONS: Final = frozenset({"TLSv1.3"})


def identity(auth_context: AuthContext) -> str | None:
    """First URI SAN, else first DNS SAN, of the verified client certificate."""
    for key in ("peer_uri", "peer_dns"):
        for value in auth_context.get(key, ()):
            text = value.decode("utf-8", "replace")
            if text:
                return text
    return None


def tls_version(auth_context: AuthContext) -> str:
    for value in auth_context.get("ssl_tls_version", ()):
        return value.decode("ascii", "replace")
    return ""


@dataclass(frozen=True)
class Policy:
    """Which identities hold which role (from --readers/--writers)."""

    readers: frozenset[str]
    writers: frozenset[str]

    def roles(self, who: str | None) -> frozenset[Role]:
        if who is None:
            return frozenset()
        if who in self.writers:
            return frozenset({Role.READER, Role.WRITER})
        if who in self.readers:
            return frozenset({Role.READER})
        return frozenset()

    def authorize(self, method: str, who: str | None) -> None:
        """Raise PermissionDeniedError unless `who` holds the role `method` needs."""
        needed = METHOD_ROLES.get(method)
        if needed is None:
            return  # health, reflection: the verified certificate is enough
        if needed not in self.roles(who):
            raise PermissionDeniedError(f"caller has no {needed.value} role")
