"""The few HTTP calls cluster-up makes itself: readiness probes and creating the fake node.

The standard library is enough for a handful of loopback requests (the import contract keeps
the `kubernetes` package inside kube/).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import ssl

REQUEST_TIMEOUT_S = 5.0


def request(
    url: str, context: ssl.SSLContext | None = None, method: str = "GET", body: Any = None
) -> tuple[int, str]:
    """(HTTP status, body) of one call, or (0, the error) when nothing answered."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"}
    # Every url is http(s)://127.0.0.1:<port>, built by this package.
    req = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=REQUEST_TIMEOUT_S, context=context) as resp:  # noqa: S310
            return int(resp.status), resp.read().decode(errors="replace")
    except urllib.error.HTTPError as err:
        return int(err.code), err.read().decode(errors="replace")
    except OSError as err:  # URLError included: refused, reset, timed out
        return 0, str(err)
