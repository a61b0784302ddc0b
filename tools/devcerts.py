"""Dev PKI for replicant's mutual TLS (`make certs`), made with the openssl CLI.

Why a script and not a chart or cert-manager: local runs, tests and the benchmark need the same
certificates without a cluster, and the openssl CLI is all it needs. It writes into a git-ignored
folder (default certs/):

    ca.crt ca.key                 the server CA: clients verify the server with ca.crt
    client-ca.crt client-ca.key   the client CA: the server trusts only it (--client-ca-file), so
                                  nothing the server CA signs (the server's own certificate
                                  included) is a client
    server.crt server.key         SANs: localhost, 127.0.0.1, replicant, replicant.<ns>.svc[...]
    reader.crt reader.key         URI SAN spiffe://replicant.dev/client/reader
    writer.crt writer.key         URI SAN spiffe://replicant.dev/client/writer
    nobody.crt nobody.key         URI SAN spiffe://replicant.dev/client/nobody (valid, but no role)
    untrusted-ca.crt untrusted.crt untrusted.key   a "writer" signed by a CA nobody trusts

Keys are ECDSA P-256; certificates last 30 days (dev only). Existing files are kept unless --force.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

READER_ID = "spiffe://replicant.dev/client/reader"
WRITER_ID = "spiffe://replicant.dev/client/writer"
NOBODY_ID = "spiffe://replicant.dev/client/nobody"
DAYS = "30"
DEFAULT_NAMESPACES = ("default", "replicant", "replicant-system")


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)  # noqa: S607 - from PATH


def _key(path: Path) -> None:
    _openssl(
        "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(path)
    )
    path.chmod(0o600)


def _ca(out: Path, name: str, cn: str) -> None:
    _key(out / f"{name}.key")
    _openssl(
        "req", "-x509", "-new", "-key", str(out / f"{name}.key"), "-sha256", "-days", DAYS,
        "-subj", f"/O=replicant-dev/CN={cn}", "-out", str(out / f"{name}.crt"),
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip


def _leaf(out: Path, name: str, ca: str, cn: str, sans: list[str], usage: str) -> None:
    """Issue one leaf certificate signed by `ca` with the given SANs and extended key usage.

    An empty `sans` or `usage` leaves that extension out (tests craft such certificates)."""
    _key(out / f"{name}.key")
    lines = ["basicConstraints=critical,CA:FALSE", "keyUsage=critical,digitalSignature"]
    if usage:
        lines.append(f"extendedKeyUsage={usage}")
    if sans:
        lines.append("subjectAltName=" + ",".join(sans))
    ext = "\n".join(lines)
    with tempfile.TemporaryDirectory() as tmp:
        csr, extfile = Path(tmp, "req.csr"), Path(tmp, "ext.cnf")
        extfile.write_text(ext + "\n")
        _openssl(
            "req", "-new", "-key", str(out / f"{name}.key"), "-subj", f"/O=replicant-dev/CN={cn}",
            "-out", str(csr),
        )  # fmt: skip
        _openssl(
            "x509", "-req", "-in", str(csr), "-CA", str(out / f"{ca}.crt"),
            "-CAkey", str(out / f"{ca}.key"), "-CAcreateserial", "-days", DAYS, "-sha256",
            "-extfile", str(extfile), "-out", str(out / f"{name}.crt"),
        )  # fmt: skip


def server_sans(namespaces: tuple[str, ...]) -> list[str]:
    sans = ["DNS:localhost", "IP:127.0.0.1", "DNS:replicant"]
    for ns in namespaces:
        sans += [f"DNS:replicant.{ns}.svc", f"DNS:replicant.{ns}.svc.cluster.local"]
    return sans


def generate(out: Path, namespaces: tuple[str, ...] = DEFAULT_NAMESPACES) -> None:
    out.mkdir(parents=True, exist_ok=True)
    _ca(out, "ca", "replicant dev CA")
    _ca(out, "client-ca", "replicant dev client CA")
    _leaf(out, "server", "ca", "replicant", server_sans(namespaces), "serverAuth")
    # CN deliberately differs from the identity: replicant reads SANs only.
    _leaf(out, "reader", "client-ca", "reader", [f"URI:{READER_ID}"], "clientAuth")
    _leaf(out, "writer", "client-ca", "writer", [f"URI:{WRITER_ID}"], "clientAuth")
    _leaf(out, "nobody", "client-ca", "nobody", [f"URI:{NOBODY_ID}"], "clientAuth")
    _ca(out, "untrusted-ca", "somebody else's CA")
    _leaf(out, "untrusted", "untrusted-ca", "writer", [f"URI:{WRITER_ID}"], "clientAuth")
    for srl in out.glob("*.srl"):
        srl.unlink()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.devcerts", description=__doc__)
    parser.add_argument("--out", default="certs", help="output folder (default: certs)")
    parser.add_argument("--force", action="store_true", help="regenerate even if present")
    parser.add_argument(
        "--namespace",
        action="append",
        help="namespace for replicant.<ns>.svc SANs (repeatable; default: %(default)s)",
    )
    args = parser.parse_args(argv)
    out = Path(args.out)
    # client-ca.crt too: a folder from before the separate client CA is regenerated.
    if all((out / name).exists() for name in ("client-ca.crt", "untrusted.crt")) and not args.force:
        print(f"dev certificates already in {out}/ (use --force to regenerate)")
        return 0
    generate(out, tuple(args.namespace or DEFAULT_NAMESPACES))
    print(f"dev certificates written to {out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
