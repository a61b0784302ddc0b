"""Entry point (requirement: one process serving the API and the reconciler): `python -m server`
(flags in server/config.py), or `python -m server healthcheck` for the one-shot health client of
server/healthcheck.py (the image has one entry point). gRPC core settings are applied before grpc
is imported; SIGTERM or SIGINT shuts down gracefully (server/app.py), exit 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from server import cipher_policy, logs
from server import config as config_module

log = logging.getLogger("server")


async def serve(cfg: config_module.Config) -> int:
    # Imported here, after cipher_policy.apply(): these import grpc.
    from kube import client as kube_client
    from kube.errors import KubeError
    from server import tls
    from server.app import App

    files = tls.CertificateFiles(cfg.tls_cert_file, cfg.tls_key_file, cfg.client_ca_file)
    try:
        credentials = tls.server_credentials(files)
        api = await kube_client.connect(cfg.kubeconfig)
    except (OSError, ValueError, KubeError) as exc:
        log.error("cannot start", extra={"error": str(exc)})
        return 1
    try:
        app = App(cfg, api, credentials=credentials, client_cas=lambda: files.client_cas)
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        try:
            await app.start()
            await stop.wait()
        finally:  # also after a failed start: stop what already started
            await app.stop()
    except (RuntimeError, OSError) as exc:  # a port is taken (grpc raises RuntimeError)
        log.error("cannot listen", extra={"error": str(exc)})
        return 1
    finally:
        await api.close()
    return 0


def main() -> int:
    cipher_policy.apply()  # before anything imports grpc
    if sys.argv[1:2] == ["healthcheck"]:
        from server import healthcheck

        return healthcheck.main(sys.argv[2:])
    logs.setup()
    try:
        cfg = config_module.parse()
    except config_module.ConfigError as exc:
        log.error("invalid configuration", extra={"error": str(exc)})
        return 2
    return asyncio.run(serve(cfg))


if __name__ == "__main__":
    sys.exit(main())
