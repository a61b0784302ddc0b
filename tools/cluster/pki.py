"""Throwaway PKI for the local control plane, made with the openssl CLI.

The API server needs a serving certificate, client certificates for every component
and the admin (O=system:masters), and a service-account signing key. They are made
fresh per state directory at cluster-up so no key is ever committed or shared; the
openssl CLI is used because Python's stdlib cannot make certificates and the
`cryptography` package is not a dependency we want for a dev tool. ECDSA P-256 keys
keep generation to a few milliseconds each.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

CA_NAME = "ca"
SERVER_NAME = "apiserver"
SA_KEY_NAME = "service-account"
VALID_DAYS = "365"

# Names the API server is reached by: loopback for us, the in-cluster names so a
# certificate check from a (fake) pod's point of view would also pass.
SERVER_SANS = (
    "IP:127.0.0.1",
    "DNS:localhost",
    "DNS:kubernetes",
    "DNS:kubernetes.default",
    "DNS:kubernetes.default.svc",
    "DNS:kubernetes.default.svc.cluster.local",
    "IP:10.0.0.1",
)


@dataclass(frozen=True)
class ClientIdentity:
    """Who a client certificate authenticates as (CN = user, O = groups)."""

    file_stem: str
    user: str
    groups: tuple[str, ...] = ()


ADMIN = ClientIdentity("admin", "replicant-admin", ("system:masters",))
CONTROLLER_MANAGER = ClientIdentity("kube-controller-manager", "system:kube-controller-manager")
SCHEDULER = ClientIdentity("kube-scheduler", "system:kube-scheduler")
# kwok rewrites node and pod status of every node it manages; the default RBAC
# roles have nothing that narrow, so it runs as a cluster admin (local use only).
KWOK = ClientIdentity("kwok", "kwok-controller", ("system:masters",))
CLIENTS = (ADMIN, CONTROLLER_MANAGER, SCHEDULER, KWOK)


class PKIError(RuntimeError):
    """openssl failed; the message carries its stderr."""


def _openssl(*args: str, cwd: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise PKIError("the openssl command is needed to make the cluster's certificates")
    result = subprocess.run([openssl, *args], cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise PKIError(f"openssl {args[0]} failed: {result.stderr.strip()}")


def _new_key(name: str, pki: Path) -> None:
    _openssl(
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        f"{name}.key",
        cwd=pki,
    )
    (pki / f"{name}.key").chmod(0o600)


def _subject(user: str, groups: tuple[str, ...]) -> str:
    return "".join(f"/O={group}" for group in groups) + f"/CN={user}"


def _sign(name: str, subject: str, extensions: str, pki: Path) -> None:
    """Key + CSR + certificate signed by the local CA, with the given v3 extensions."""
    _new_key(name, pki)
    _openssl("req", "-new", "-key", f"{name}.key", "-subj", subject, "-out", f"{name}.csr", cwd=pki)
    (pki / f"{name}.ext").write_text(extensions)
    _openssl(
        "x509",
        "-req",
        "-in",
        f"{name}.csr",
        "-CA",
        f"{CA_NAME}.crt",
        "-CAkey",
        f"{CA_NAME}.key",
        "-CAcreateserial",
        "-days",
        VALID_DAYS,
        "-sha256",
        "-extfile",
        f"{name}.ext",
        "-out",
        f"{name}.crt",
        cwd=pki,
    )
    for leftover in (f"{name}.csr", f"{name}.ext"):
        (pki / leftover).unlink()


def _make_ca(pki: Path) -> None:
    _new_key(CA_NAME, pki)
    _openssl(
        "req",
        "-x509",
        "-new",
        "-key",
        f"{CA_NAME}.key",
        "-subj",
        "/CN=replicant-local-ca",
        "-days",
        VALID_DAYS,
        "-sha256",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        "-out",
        f"{CA_NAME}.crt",
        cwd=pki,
    )


def _make_server_cert(pki: Path, extra_sans: tuple[str, ...]) -> None:
    extensions = (
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        f"subjectAltName={','.join(SERVER_SANS + extra_sans)}\n"
    )
    _sign(SERVER_NAME, "/CN=kube-apiserver", extensions, pki)


def _make_client_cert(client: ClientIdentity, pki: Path) -> None:
    extensions = (
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=clientAuth\n"
    )
    _sign(client.file_stem, _subject(client.user, client.groups), extensions, pki)


def _make_service_account_key(pki: Path) -> None:
    _new_key(SA_KEY_NAME, pki)
    _openssl("pkey", "-in", f"{SA_KEY_NAME}.key", "-pubout", "-out", f"{SA_KEY_NAME}.pub", cwd=pki)


def ensure_pki(
    pki: Path,
    extra_clients: tuple[ClientIdentity, ...] = (),
    extra_sans: tuple[str, ...] = (),
) -> bool:
    """Create the PKI unless it exists; True when it was created now.

    The service-account public key is written last, so its presence means a
    complete set; a half-made set (interrupted run) is simply made again. The real
    node adds its clients (kubelet, kube-proxy) and the bridge address as a SAN.
    """
    if (pki / f"{SA_KEY_NAME}.pub").exists():
        return False
    pki.mkdir(parents=True, exist_ok=True)
    _make_ca(pki)
    _make_server_cert(pki, extra_sans)
    for client in CLIENTS + extra_clients:
        _make_client_cert(client, pki)
    _make_service_account_key(pki)
    return True


def b64_file(path: Path) -> str:
    """Base64 of a PEM file, as kubeconfig's *-data fields want it."""
    return base64.b64encode(path.read_bytes()).decode("ascii")
