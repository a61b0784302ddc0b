"""A minimal HTTPS client for the few API calls cluster-up itself needs.

Readiness probes, creating the fake node and checking it is Ready: a handful of
requests that do not justify a client library (the import contract keeps the
`kubernetes` package inside kube/).
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

REQUEST_TIMEOUT_S = 5.0


class APIError(RuntimeError):
    """The API server answered with an error or could not be reached."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Client:
    """An API server endpoint plus the client certificate to talk to it with."""

    base_url: str
    ca_file: Path
    cert_file: Path
    key_file: Path

    def _context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        context.load_cert_chain(str(self.cert_file), str(self.key_file))
        return context

    def request(self, method: str, path: str, body: Any | None = None) -> tuple[int, str]:
        data = json.dumps(body).encode() if body is not None else None
        # base_url is always https://127.0.0.1:<port>, built by this package.
        req = urllib.request.Request(self.base_url + path, data=data, method=method)  # noqa: S310
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(  # noqa: S310 (https URL, see above)
                req, timeout=REQUEST_TIMEOUT_S, context=self._context()
            ) as resp:
                return int(resp.status), resp.read().decode(errors="replace")
        except urllib.error.HTTPError as err:
            return int(err.code), err.read().decode(errors="replace")
        except (urllib.error.URLError, OSError) as err:
            raise APIError(f"{method} {path}: {err}") from err

    def get_json(self, path: str) -> dict[str, Any]:
        status, text = self.request("GET", path)
        if status != 200:
            raise APIError(f"GET {path}: HTTP {status}: {text[:200]}", status)
        parsed: dict[str, Any] = json.loads(text)
        return parsed

    def is_ready(self) -> bool:
        """GET /readyz is 200 (every post-start hook done, etcd reachable)."""
        try:
            status, _ = self.request("GET", "/readyz")
        except APIError:
            return False
        return status == 200


def plain_get_ok(url: str) -> bool:
    """GET over plain HTTP (etcd's loopback client URL, built by us) returns 200."""
    try:
        with urllib.request.urlopen(url, timeout=REQUEST_TIMEOUT_S) as resp:  # noqa: S310
            return int(resp.status) == 200
    except (urllib.error.URLError, OSError):
        return False
