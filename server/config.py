"""Process configuration (requirement: deployable with the Helm chart): command-line flags only
(the chart passes them as container args).

Only what differs between installs, or between the servers a test runs side by side, is a flag;
grants use server/authz.py's syntax, and repeated flags add up. Every value is checked before
anything starts: a namespace Kubernetes would refuse must stop the process, not leave it SERVING
while its watch fails forever. Fixed (each with a TODO where it lives): the bind address, the
Lease name, the shutdown grace and the log level; the Lease holder identity is always generated.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING

from server import authz
from server.validation import is_label

if TYPE_CHECKING:
    from collections.abc import Sequence


class ConfigError(ValueError):
    """One or more settings are invalid; the message names each (flag and value)."""


@dataclass(frozen=True)
class Config:
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
    identity: str


def _split(value: str) -> tuple[str, ...]:
    """The comma-separated items, each once (a namespace listed twice is watched once)."""
    return tuple(dict.fromkeys(item.strip() for item in value.split(",") if item.strip()))


def parse(argv: Sequence[str] | None = None) -> Config:
    parser = argparse.ArgumentParser(
        prog="python -m server", description="replicant gRPC server (mTLS) and reconciler."
    )
    add = parser.add_argument
    add("--grpc-port", default="8443", help="gRPC (mTLS) port; 0 picks a free one")
    add("--http-port", default="8080", help="plaintext /livez /readyz /metrics port")
    add("--tls-cert-file", default="/etc/replicant/tls/tls.crt", help="server certificate")
    add("--tls-key-file", default="/etc/replicant/tls/tls.key", help="server key")
    add("--client-ca-file", default="/etc/replicant/client-ca/ca.crt", help="client CA")
    add(
        "--readers",
        action="append",
        default=[],
        help="reader grants: IDENTITY (all watched namespaces) or IDENTITY=NAMESPACE; repeatable",
    )
    add("--writers", action="append", default=[], help="writer grants, same syntax; repeatable")
    add("--namespaces", default="", help="namespaces to watch (empty: all)")
    add(
        "--kubeconfig",
        default=os.environ.get("KUBECONFIG", ""),
        help="kubeconfig file (default: $KUBECONFIG; unset: in-cluster config)",
    )
    add("--leader-election-namespace", default="default", help="namespace of the leader Lease")
    args = parser.parse_args(argv)
    args.readers, args.writers = ",".join(args.readers), ",".join(args.writers)
    problems = _problems(args)
    if problems:
        raise ConfigError("; ".join(problems))
    return Config(
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
        identity=default_identity(),
    )


def default_identity() -> str:
    """Hostname plus a random suffix, as client-go does: two processes on one host (or two
    containers that share a hostname) must never both believe they hold the Lease."""
    return f"{socket.gethostname()}_{secrets.token_hex(8)}"


def _problems(args: argparse.Namespace) -> list[str]:
    """Every invalid setting, as "--flag: 'value' is not <what>" (empty when all are valid)."""
    namespaces = _split(args.namespaces)
    checks: list[tuple[str, str, bool, str]] = [
        *(("--namespaces", ns, is_label(ns), "a DNS-1123 label") for ns in namespaces),
        (
            "--leader-election-namespace",
            args.leader_election_namespace,
            is_label(args.leader_election_namespace),
            "a DNS-1123 label",
        ),
        *(
            (flag, entry, False, f"a valid grant: {problem}")
            for flag, value in (("--readers", args.readers), ("--writers", args.writers))
            for entry in _split(value)
            if (problem := authz.grant_problem(entry, namespaces))
        ),
        ("--grpc-port", args.grpc_port, _is_port(args.grpc_port), "a port (0..65535)"),
        ("--http-port", args.http_port, _is_port(args.http_port), "a port (0..65535)"),
    ]
    return [f"{flag}: {value!r} is not {what}" for flag, value, ok, what in checks if not ok]


def _is_port(value: str) -> bool:
    return value.isascii() and value.isdigit() and int(value) <= 65535
