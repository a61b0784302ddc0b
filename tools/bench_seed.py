"""The Deployments `make bench` reads: created once, concurrently through the API, then kept.

replicas 0, so no pods: the bench measures replicant's cache and API, not the scheduler. Counting
them costs one LIST with limit=1 (the API server's remainingItemCount), so a second run with
10,000 in place spends well under a second here.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import TYPE_CHECKING, Any

from kube.errors import ConflictError

if TYPE_CHECKING:
    from kube.client import ApiTransport

CREATE_CONCURRENCY = 32


def deployment(namespace: str, name: str) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]},
            },
        },
    }


async def count(api: ApiTransport, namespace: str) -> int:
    page = await api.request(
        "GET", f"/apis/apps/v1/namespaces/{namespace}/deployments", query={"limit": "1"}
    )
    items = len(page.get("items", []))
    return items + int(page.get("metadata", {}).get("remainingItemCount", 0))


async def ensure(api: ApiTransport, namespace: str, want: int, timeout_s: float) -> None:
    """At least bench-0000 .. bench-<want-1> exist in `namespace` (existing ones are kept)."""
    with contextlib.suppress(ConflictError):  # exists already
        await api.request("POST", "/api/v1/namespaces", body={"metadata": {"name": namespace}})
    if await count(api, namespace) >= want:
        return
    print(f"creating {want:,} Deployments in {namespace} (once) ...", file=sys.stderr)
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    gate = asyncio.Semaphore(CREATE_CONCURRENCY)

    async def create(i: int) -> None:
        async with gate:
            with contextlib.suppress(ConflictError):  # left from an interrupted seeding
                await api.request("POST", path, body=deployment(namespace, f"bench-{i:04d}"))

    async with asyncio.timeout(timeout_s):
        await asyncio.gather(*(create(i) for i in range(want)))
