"""The composition root (every requirement meets here): the one place that builds the caches, the
API and the reconciler, which never import each other (`.importlinter`).

Shutdown (SIGTERM, docs/design.md): readiness and health fall at once, `server.stop(grace)` lets
in-flight RPCs finish, then the background tasks are cancelled (leader election releases the
Lease) and the probe port closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

import grpc
import prometheus_client
from grpc_health.v1 import health_pb2_grpc  # type: ignore[import-untyped]
from grpc_health.v1.health import aio as health_aio  # type: ignore[import-untyped]
from grpc_reflection.v1alpha import reflection  # type: ignore[import-untyped]

from kube.autoscalers import Autoscalers
from kube.leases import LeaseApi
from kube.probe import ApiServerProbe
from kube.replicatargets import replica_target_informers
from kube.scale import ClusterWriter
from kube.target_store import ReplicaTargetStore
from kube.views import deployment_informers
from reconciler.cluster import CacheWorld
from reconciler.controller import Controller
from reconciler.leader import LeaderElector
from reconciler.metrics import ReconcilerMetrics
from reconciler.reconcile import Reconciler
from replicant.v1 import replicant_pb2_grpc
from server import authz, health
from server.http import ProbeServer
from server.identity import IdentityReader
from server.interceptor import ApiInterceptor
from server.metrics import Metrics
from server.servicer import ReplicaService

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from cryptography import x509

    from kube.client import ApiTransport
    from kube.informer import Informer
    from server.config import Config

log = logging.getLogger(__name__)

MAX_RECEIVE_MESSAGE_BYTES = 16 * 1024
# Concurrent streams one HTTP/2 connection may hold: a caller opens more only by connecting
# again (each connection is a TLS handshake with a client certificate).
# TODO: make it a setting if a real client ever needs more in flight on one connection.
MAX_CONCURRENT_STREAMS = 100
# TODO: settings, once an install needs other values. All interfaces: the pod's IP is not known
# in advance (both ports are meant to be reached from outside the pod).
BIND_ADDRESS = "0.0.0.0"  # noqa: S104
# The chart's Lease RBAC names exactly this one (one release per namespace).
LEASE_NAME = "replicant-leader"
# Time in-flight RPCs get on SIGTERM; the chart's terminationGracePeriodSeconds leaves room for it.
SHUTDOWN_GRACE_S = 20.0
# A background loop that crashed on a bug restarts after this pause (the loops retry their own
# Kubernetes errors with backoff; this is for everything else).
RESTART_DELAY_S = 5.0
SERVICE_NAMES = (authz.SERVICE, "grpc.health.v1.Health", reflection.SERVICE_NAME)


class App:
    def __init__(
        self,
        config: Config,
        api: ApiTransport,
        *,
        credentials: grpc.ServerCredentials,
        client_cas: Callable[[], tuple[x509.Certificate, ...]],
        probe: ApiServerProbe | None = None,
    ) -> None:
        self.config = config
        # _created series would double every counter's series count; nothing here reads them.
        # A process-wide switch of prometheus_client, so it is thrown here, at the top.
        prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
        # Per App, not the global default registry: two Apps in one process (tests) stay apart.
        self.registry = prometheus_client.CollectorRegistry()
        # -- caches: one informer per watched namespace and kind ---------------------------
        self.deployments = deployment_informers(api, config.namespaces)
        targets = replica_target_informers(api, config.namespaces)
        autoscalers = Autoscalers(api, config.namespaces)
        self.probe = probe or ApiServerProbe(api)
        # Reads are answered from Deployments and ReplicaTargets: readiness follows those two.
        self.readiness = health.Readiness(
            [*self.deployments.informers, *targets.informers], self.probe
        )
        self.informers: list[Informer[Any]] = [
            *self.deployments.informers,
            *targets.informers,
            *autoscalers.informers.informers,
        ]
        for informer in self.informers:
            self.probe.on_recovered.append(informer.retry_now)
        self.metrics = Metrics(self.registry, self.informers, self.probe, self.readiness)
        # -- the API ---------------------------------------------------------------------
        self.health = health_aio.HealthServicer()
        self.servicer = ReplicaService(
            self.deployments,
            self.readiness,
            targets=targets,
            store=ReplicaTargetStore(api, autoscalers),
        )
        interceptor = ApiInterceptor(
            authz.Policy(authz.parse_grants(config.readers), authz.parse_grants(config.writers)),
            IdentityReader(client_cas),
            self.metrics,
        )
        self.server = grpc.aio.server(
            interceptors=[interceptor],
            options=[
                ("grpc.max_receive_message_length", MAX_RECEIVE_MESSAGE_BYTES),
                ("grpc.max_concurrent_streams", MAX_CONCURRENT_STREAMS),
                # One process per port: a second one fails to start instead of sharing it.
                ("grpc.so_reuseport", 0),
            ],
        )
        replicant_pb2_grpc.add_ReplicaServiceServicer_to_server(self.servicer, self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        # Reflection, so grpcurl needs no proto file. TODO: `grpcurl describe Service.Method`
        # says "Symbol not found" until grpcio-reflection resolves method names (grpc/grpc#34743);
        # `describe Service` shows every method.
        reflection.enable_server_reflection(SERVICE_NAMES, self.server)
        self.grpc_port = self.server.add_secure_port(
            f"{BIND_ADDRESS}:{config.grpc_port}", credentials
        )
        self.http = ProbeServer(self.readiness, self.registry)
        self.http_port = 0
        # -- the reconciler, run only while this replica holds the Lease -----------------
        world = CacheWorld(targets, self.deployments, autoscalers)
        reconciler_metrics = ReconcilerMetrics(self.registry, lease=LEASE_NAME)
        controller = Controller(
            Reconciler(world, ClusterWriter(api, config.identity)).reconcile,
            keys=world.target_keys,
            synced=lambda: world.synced,
            metrics=reconciler_metrics,
        )
        world.subscribe(controller.enqueue)
        lease = LeaseApi(api, config.leader_election_namespace, LEASE_NAME)
        self.elector = LeaderElector(lease, config.identity, metrics=reconciler_metrics)
        self._tasks: list[asyncio.Task[None]] = []
        self._background: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {
            **{f"informer:{i.path}": i.run for i in self.informers},
            "apiserver-probe": self.probe.run,
            # The Lease is released when this task is cancelled (after the grace).
            "leader-election": lambda: self.elector.run(controller.run),
            "health": lambda: health.serve_when_ready(self.readiness, self.health),
        }

    async def start(self) -> None:
        await health.set_health(self.health, serving=False)
        for name, factory in self._background.items():
            self._tasks.append(asyncio.create_task(_supervise(name, factory), name=name))
        self.http_port = await self.http.start(BIND_ADDRESS, self.config.http_port)
        await self.server.start()
        log.info(
            "serving",
            extra={
                "grpc_port": self.grpc_port,
                "http_port": self.http_port,
                "identity": self.config.identity,  # the Lease holder and the Events' reporter
            },
        )

    async def stop(self) -> None:
        """Graceful: not ready first, then let in-flight RPCs finish, then stop everything else."""
        self.readiness.draining = True
        await self.health.enter_graceful_shutdown()
        log.info("shutting down", extra={"grace_s": SHUTDOWN_GRACE_S})
        await self.server.stop(SHUTDOWN_GRACE_S)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.http.stop()
        log.info("stopped")


async def _supervise(name: str, factory: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run a background loop; if it crashes on a bug, log and restart it after a pause."""
    while True:
        try:
            return await factory()
        except Exception:
            log.exception(
                "background task crashed; restarting",
                extra={"task": name, "delay_s": RESTART_DELAY_S},
            )
            await asyncio.sleep(RESTART_DELAY_S)
