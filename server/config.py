"""Process configuration (requirement: deployable with the Helm chart): every flag has an
environment variable (the chart sets those).

A flag wins over its variable, which wins over the default. Lists are comma-separated; grants
(--readers, --writers) are `IDENTITY` or `IDENTITY=NAMESPACE` entries (server/authz.py), and those
two flags are repeatable: every occurrence adds its entries. Every value
is checked before anything starts (`ConfigError` names each bad one): a namespace Kubernetes would
refuse must stop the process, not leave it SERVING while its watch fails forever.
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import os
import secrets
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING

from server import authz
from server.validation import is_label, is_subdomain

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

# Event.reportingInstance (set from the identity) is limited to 128 characters by the API server.
MAX_IDENTITY_LEN = 128
# A certificate SAN (URI or DNS name) as configured for a role; generous, but bounded.
MAX_PRINCIPAL_LEN = 1024


class ConfigError(ValueError):
    """One or more settings are invalid; the message names each (flag and value)."""


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
        "reader grants: IDENTITY (all watched namespaces) or IDENTITY=NAMESPACE; repeatable",
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


_REPEATABLE = {"--readers": "REPLICANT_READERS", "--writers": "REPLICANT_WRITERS"}


def _split(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


def parse(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> Config:
    env = os.environ if env is None else env
    parser = argparse.ArgumentParser(
        prog="python -m server", description="replicant gRPC server (mTLS) and reconciler."
    )
    for flag, var, default, help_text in _OPTIONS:
        if flag in _REPEATABLE:
            parser.add_argument(flag, action="append", help=f"{help_text} (${var})")
        else:
            parser.add_argument(flag, default=env.get(var, default), help=f"{help_text} (${var})")
    args = parser.parse_args(argv)
    for flag, var in _REPEATABLE.items():  # every occurrence counts; none: the variable
        dest = flag.lstrip("-")
        given = getattr(args, dest)
        setattr(args, dest, ",".join(given) if given is not None else env.get(var, ""))
    problems = _problems(args)
    if problems:
        raise ConfigError("; ".join(problems))
    return Config(
        bind_address=args.bind_address,
        grpc_port=int(args.grpc_port),
        http_port=int(args.http_port),
        tls_cert_file=args.tls_cert_file,
        tls_key_file=args.tls_key_file,
        client_ca_file=args.client_ca_file,
        readers=frozenset(_split(args.readers)),
        writers=frozenset(_split(args.writers)),
        namespaces=_split(args.namespaces),
        kubeconfig=args.kubeconfig or None,
        leader_election_namespace=args.leader_election_namespace,
        leader_election_lease=args.leader_election_lease,
        identity=args.identity or default_identity(),
        shutdown_grace_seconds=float(args.shutdown_grace_seconds),
        log_level=args.log_level.lower(),
        trust_domain=args.trust_domain,
    )


def default_identity() -> str:
    """Hostname plus a random suffix, as client-go does: two processes on one host (or two
    containers that share a hostname) must never both believe they hold the Lease."""
    return f"{socket.gethostname()}_{secrets.token_hex(8)}"


def _problems(args: argparse.Namespace) -> list[str]:
    """Every invalid setting, as "--flag: 'value' is not <what>" (empty when all are valid)."""
    namespaces = _split(args.namespaces)
    identity = f"1..{MAX_IDENTITY_LEN} printable characters without spaces"
    checks: list[tuple[str, str, bool, str]] = [
        *(("--namespaces", ns, is_label(ns), "a DNS-1123 label") for ns in namespaces),
        *(
            ("--namespaces", ns, False, "listed once")
            for ns in sorted(set(namespaces))
            if namespaces.count(ns) > 1
        ),
        (
            "--leader-election-namespace",
            args.leader_election_namespace,
            is_label(args.leader_election_namespace),
            "a DNS-1123 label",
        ),
        (
            "--leader-election-lease",
            args.leader_election_lease,
            is_subdomain(args.leader_election_lease),
            "a DNS-1123 subdomain",
        ),
        (
            "--identity",
            args.identity,
            not args.identity or _printable(args.identity, MAX_IDENTITY_LEN),
            identity,
        ),
        *(
            (flag, who, _printable(who, MAX_PRINCIPAL_LEN), "a certificate identity")
            for flag, value in (("--readers", args.readers), ("--writers", args.writers))
            for who in _split(value)
        ),
        *_grant_problems(args, namespaces),
        (
            "--trust-domain",
            args.trust_domain,
            not args.trust_domain or is_subdomain(args.trust_domain),
            "a DNS name",
        ),
        ("--bind-address", args.bind_address, _is_ip(args.bind_address), "an IP address"),
        ("--grpc-port", args.grpc_port, _is_port(args.grpc_port), "a port (0..65535)"),
        ("--http-port", args.http_port, _is_port(args.http_port), "a port (0..65535)"),
        (
            "--shutdown-grace-seconds",
            args.shutdown_grace_seconds,
            _is_seconds(args.shutdown_grace_seconds),
            "a number of seconds >= 0",
        ),
        (
            "--log-level",
            args.log_level,
            args.log_level.lower() in ("debug", "info", "warning", "error"),
            "debug, info, warning or error",
        ),
    ]
    return [f"{flag}: {value!r} is not {what}" for flag, value, ok, what in checks if not ok]


def _grant_problems(
    args: argparse.Namespace, namespaces: tuple[str, ...]
) -> list[tuple[str, str, bool, str]]:
    """Grants that name a bad or unwatched namespace (unprintable ones are reported above)."""
    return [
        (flag, entry, False, f"a valid grant: {problem}")
        for flag, value in (("--readers", args.readers), ("--writers", args.writers))
        for entry in _split(value)
        if _printable(entry, MAX_PRINCIPAL_LEN)
        and (problem := authz.grant_problem(entry, namespaces))
    ]


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _is_port(value: str) -> bool:
    return value.isascii() and value.isdigit() and int(value) <= 65535


def _is_seconds(value: str) -> bool:
    try:
        seconds = float(value)
    except ValueError:
        return False
    return math.isfinite(seconds) and seconds >= 0


def _printable(value: str, max_len: int) -> bool:
    return 0 < len(value) <= max_len and value.isprintable() and not any(c.isspace() for c in value)
