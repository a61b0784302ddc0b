"""Kubernetes client factory and the raw-JSON seam every other kube module uses.

Requirement: only kube talks to the API server, through the one `kubernetes.aio` ApiClient (its
credentials; docs/design.md), so timeouts, auth and error mapping are decided once. Raw JSON on
API paths, not generated models: one code path serves every kind, straight into frozen views.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any, Final, NoReturn, Protocol

import aiohttp
from kubernetes.aio import client as kclient
from kubernetes.aio import config as kconfig

from kube.errors import KubeError, from_response, from_status, map_exception

JSONObject = dict[str, Any]
Query = Mapping[str, str | int]  # values as the URL spells them ("true", not True)
MERGE_PATCH: Final = "application/merge-patch+json"
JSON_PATCH: Final = "application/json-patch+json"

CONNECT_S: Final = 5.0
# Plain requests (list pages, probes, writes): bounded in total so nothing waits forever.
DEFAULT_LIMITS: Final = aiohttp.ClientTimeout(total=30.0, sock_connect=CONNECT_S)
# One watch event is one object (etcd stores at most ~1.5 MiB each): far beyond is a broken stream.
MAX_EVENT_BYTES: Final = 16 * 2**20


class ApiTransport(Protocol):
    """What the informer and writers need from the API server; tests pass a fake."""

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Query | None = None,
        body: object = None,
        content_type: str = "application/json",
        limits: aiohttp.ClientTimeout = DEFAULT_LIMITS,
        expect_json: bool = True,
    ) -> JSONObject: ...

    def stream(
        self, path: str, *, query: Query, read_timeout: float
    ) -> contextlib.AbstractAsyncContextManager[AsyncIterator[JSONObject]]: ...


class KubeApi:
    """Raw JSON requests and line-delimited watch streams against one API server."""

    def __init__(self, api_client: kclient.ApiClient) -> None:
        self._api = api_client

    async def close(self) -> None:
        await self._api.close()  # type: ignore[no-untyped-call]

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Query | None = None,
        body: object = None,
        content_type: str = "application/json",
        limits: aiohttp.ClientTimeout = DEFAULT_LIMITS,
        expect_json: bool = True,
    ) -> JSONObject:
        """One request; the decoded JSON object on 2xx ({} if not `expect_json`), else KubeError."""
        try:
            resp = await self._call(method, path, query, body, content_type, limits)
            data: bytes = await resp.read()
        except Exception as exc:  # noqa: BLE001 - mapped, or re-raised unchanged (a bug)
            _raise_mapped(exc)
        if not 200 <= resp.status < 300:
            raise from_response(resp.status, data)
        if not expect_json:
            return {}
        try:
            decoded = json.loads(data) if data else {}
        except ValueError as exc:
            raise KubeError("API server sent invalid JSON") from exc
        if not isinstance(decoded, dict):
            raise KubeError("API server sent a non-object")
        return decoded

    @contextlib.asynccontextmanager
    async def stream(
        self, path: str, *, query: Query, read_timeout: float
    ) -> AsyncIterator[AsyncIterator[JSONObject]]:
        """Open a watch (entered once the API server answered 200) yielding each JSON line; a
        silent (half-open) connection fails after `read_timeout` seconds instead of hanging."""
        limits = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_S, sock_read=read_timeout)
        try:
            resp = await self._call("GET", path, query, None, "application/json", limits)
        except Exception as exc:  # noqa: BLE001 - mapped, or re-raised unchanged (a bug)
            _raise_mapped(exc)
        raw = resp.response
        try:
            if resp.status != 200:
                raise from_status(resp.status)  # a GET: no admission message to read
            yield _lines(raw.content)
        finally:
            # A watch connection is never reused: abort it. A plain close starts a TLS shutdown that
            # waits for the API server's close_notify, tracked by nobody: if the event loop ends
            # first (process exit, a test), the socket leaks (ResourceWarning: unclosed transport).
            if raw.connection is not None and raw.connection.transport is not None:
                raw.connection.transport.abort()
            raw.close()

    async def _call(
        self,
        method: str,
        path: str,
        query: Query | None,
        body: object,
        content_type: str,
        limits: aiohttp.ClientTimeout,
    ) -> Any:
        params = [(k, str(v)) for k, v in (query or {}).items()]
        headers = {"Accept": "application/json", "Content-Type": content_type}
        _, url, hdrs, payload, _ = await self._api.param_serialize(
            method=method,
            resource_path=path,
            query_params=params,
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        return await self._api.call_api(
            method, url, header_params=hdrs, body=payload, _request_timeout=limits
        )


async def _lines(content: aiohttp.StreamReader) -> AsyncIterator[JSONObject]:
    """Each JSON line of a watch, split from whatever the socket delivered. Not aiohttp's
    readline: it refuses a line over twice its read buffer, and one object may be larger."""
    partial: list[bytes] = []  # the start of a line that the next chunk completes
    pending = 0  # its length: bounded, so a line that never ends cannot take all memory
    try:
        async for chunk in content.iter_any():
            *lines, rest = chunk.split(b"\n")
            if lines:
                lines[0] = b"".join([*partial, lines[0]])
                partial.clear()
                pending = 0
                for line in lines:
                    if line.strip():
                        yield _decode_line(line)
            if rest:
                partial.append(rest)
                pending += len(rest)
                if pending > MAX_EVENT_BYTES:
                    raise KubeError(f"watch event longer than {MAX_EVENT_BYTES} bytes")
        if last := b"".join(partial).strip():
            yield _decode_line(last)
    except KubeError:
        raise
    except Exception as exc:  # noqa: BLE001 - mapped, or re-raised unchanged (a bug)
        _raise_mapped(exc)


def _raise_mapped(exc: Exception) -> NoReturn:
    """Raise the domain error of a transport or API failure; anything else (a bug) unchanged."""
    mapped = map_exception(exc)
    if mapped is None:
        raise exc
    raise mapped from exc


def _decode_line(line: bytes) -> JSONObject:
    try:
        decoded = json.loads(line)
    except ValueError as exc:
        raise KubeError("watch sent invalid JSON") from exc
    if not isinstance(decoded, dict):
        raise KubeError("watch sent a non-object")
    return decoded


async def connect(kubeconfig: str | None) -> KubeApi:
    """Build a client from a kubeconfig file, or from the pod's service account when None."""
    configuration = kclient.Configuration()
    try:
        if kubeconfig:
            await kconfig.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig, client_configuration=configuration
            )
        else:
            kconfig.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except (kconfig.ConfigException, OSError, ValueError) as exc:
        raise KubeError(f"cannot load Kubernetes client configuration: {exc}") from exc
    # No library-level retries: the informer and the callers own retry and backoff.
    configuration.retries = None
    return KubeApi(kclient.ApiClient(configuration))
