"""Process configuration: every flag has an environment variable (the Helm chart sets those).

A flag wins over its variable, which wins over the default. Lists are comma-separated; grants
(--readers, --writers) are `IDENTITY` or `IDENTITY=NAMESPACE` entries (server/authz.py), checked
here so a typo stops the start with a clear message.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING

from server import authz, validation

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


@dataclass(frozen=True)
class Config:
    bind_address: str
    grpc_port: int
    http_port: int
    tls_cert_file: str
    tls_key_file: str
    client_ca_file: str
    readers: frozenset[str]
    writers: frozenset[str]
    namespaces: tuple[str, ...]
    kubeconfig: str | None
    leader_election_namespace: str
    leader_election_lease: str
    identity: str
    shutdown_grace_seconds: float
    log_level: str
    trust_domain: str


# (flag, env var, default, help)
_OPTIONS: tuple[tuple[str, str, str, str], ...] = (
    ("--bind-address", "REPLICANT_BIND_ADDRESS", "0.0.0.0", "address for both ports"),  # noqa: S104
    ("--grpc-port", "REPLICANT_GRPC_PORT", "8443", "gRPC (mTLS) port; 0 picks a free one"),
    ("--http-port", "REPLICANT_HTTP_PORT", "8080", "plaintext /livez /readyz /metrics port"),
    ("--tls-cert-file", "REPLICANT_TLS_CERT_FILE", "/etc/replicant/tls/tls.crt", "server cert"),
    ("--tls-key-file", "REPLICANT_TLS_KEY_FILE", "/etc/replicant/tls/tls.key", "server key"),
    ("--client-ca-file", "REPLICANT_CLIENT_CA_FILE", "/etc/replicant/tls/ca.crt", "client CA"),
    (
        "--readers",
        "REPLICANT_READERS",
        "",
        "reader grants: IDENTITY (all watched namespaces) or IDENTITY=NAMESPACE, repeatable",
    ),
    ("--writers", "REPLICANT_WRITERS", "", "writer grants, same syntax (writers also read)"),
    (
        "--trust-domain",
        "REPLICANT_TRUST_DOMAIN",
        "",
        "accept only SPIFFE IDs spiffe://<this>/... as identities (empty: any URI or DNS SAN)",
    ),
    ("--namespaces", "REPLICANT_NAMESPACES", "", "namespaces to watch (empty: all)"),
    ("--kubeconfig", "KUBECONFIG", "", "kubeconfig file (unset: in-cluster config)"),
    (
        "--leader-election-namespace",
        "REPLICANT_LEADER_ELECTION_NAMESPACE",
        "default",
        "namespace of the leader Lease",
    ),
    (
        "--leader-election-lease",
        "REPLICANT_LEADER_ELECTION_LEASE",
        "replicant-leader",
        "name of the leader Lease",
    ),
    (
        "--identity",
        "REPLICANT_IDENTITY",
        "",
        "leader-election holder identity, unique per process (default: hostname_<random>)",
    ),
    (
        "--shutdown-grace-seconds",
        "REPLICANT_SHUTDOWN_GRACE_SECONDS",
        "20",
        "time in-flight RPCs get on SIGTERM",
    ),
    ("--log-level", "REPLICANT_LOG_LEVEL", "info", "debug, info, warning or error"),
)


def _split(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


def parse(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> Config:
    env = os.environ if env is None else env
    parser = argparse.ArgumentParser(
        prog="python -m server", description="replicant gRPC server (mTLS) and reconciler."
    )
    for flag, var, default, help_text in _OPTIONS:
        parser.add_argument(flag, default=env.get(var, default), help=f"{help_text} (${var})")
    args = parser.parse_args(argv)
    try:
        grpc_port, http_port = int(args.grpc_port), int(args.http_port)
        grace = float(args.shutdown_grace_seconds)
    except ValueError as exc:
        parser.error(str(exc))
    if args.log_level.lower() not in ("debug", "info", "warning", "error"):
        parser.error(f"unknown log level {args.log_level!r}")
    readers, writers = _split(args.readers), _split(args.writers)
    namespaces = _split(args.namespaces)
    try:
        authz.Policy.from_entries(readers, writers, namespaces)
    except ValueError as exc:
        parser.error(str(exc))
    if args.trust_domain and not validation.is_subdomain(args.trust_domain):
        parser.error(f"--trust-domain {args.trust_domain!r} is not a DNS name")
    return Config(
        bind_address=args.bind_address,
        grpc_port=grpc_port,
        http_port=http_port,
        tls_cert_file=args.tls_cert_file,
        tls_key_file=args.tls_key_file,
        client_ca_file=args.client_ca_file,
        readers=frozenset(readers),
        writers=frozenset(writers),
        namespaces=namespaces,
        kubeconfig=args.kubeconfig or None,
        leader_election_namespace=args.leader_election_namespace,
        leader_election_lease=args.leader_election_lease,
        identity=args.identity or default_identity(),
        shutdown_grace_seconds=grace,
        log_level=args.log_level.lower(),
        trust_domain=args.trust_domain,
    )


def default_identity() -> str:
    """Hostname plus a random suffix, as client-go does: two processes on one host (or two
    containers that share a hostname) must never both believe they hold the Lease."""
    return f"{socket.gethostname()}_{secrets.token_hex(8)}"
