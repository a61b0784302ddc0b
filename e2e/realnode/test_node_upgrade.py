"""No call fails while the chart's pods are replaced on a real node.

A client outside the pods calls GetReplicas through the Service (ClusterIP, kube-proxy)
over mTLS at a steady 50 calls/s while the pods are replaced three ways: `helm upgrade`
with a changed pod template, `kubectl rollout restart`, and deleting a pod. Here the
kubelet runs the preStop sleep, sends SIGTERM, runs the readiness probe, and kube-proxy
drops the endpoint: what kwok only simulates. Failed calls are counted (expected: 0)
and the longest gap between two answers is reported; no timing is asserted.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

from e2e.realnode.conftest import (
    RELEASE,
    SELECTOR,
    TARGET,
    Installed,
    RealCluster,
    service_address,
)
from e2e.realnode.load import Load, Summary

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

# Load before and after each change, so the figures include steady state on both sides.
SETTLE_S = 3.0
ROLLOUT_TIMEOUT = "--timeout=4m"


def start_load(cluster: RealCluster, installed: Installed) -> Load:
    address = service_address(cluster, installed.namespace)
    load = Load(address, installed.server_name, installed.pki, installed.namespace, TARGET)
    load.start()
    time.sleep(SETTLE_S)
    return load


def finish(load: Load, what: str, record: Callable[[str, object], None]) -> Summary:
    time.sleep(SETTLE_S)
    summary = load.stop()
    print(f"\n{summary.line(what)}")
    record("calls", summary.calls)
    record("failed", summary.failed)
    record("failed_by_code", summary.failed_by_code)
    record("retried_by_code", summary.retried_by_code)
    record("longest_gap_ms", round(summary.longest_gap_s * 1000))
    record("rate_per_s", round(summary.rate))
    return summary


def pod_names(cluster: RealCluster, namespace: str) -> set[str]:
    """The server pods that are not terminating."""
    listed = cluster.kubectl("get", "pods", "-n", namespace, "-l", SELECTOR, "-o", "json")
    return {
        pod["metadata"]["name"]
        for pod in json.loads(listed.stdout)["items"]
        if not pod["metadata"].get("deletionTimestamp")
    }


def wait_rollout(cluster: RealCluster, namespace: str) -> None:
    cluster.kubectl("rollout", "status", f"deployment/{RELEASE}", "-n", namespace,
                    ROLLOUT_TIMEOUT)  # fmt: skip


def test_helm_upgrade_with_a_changed_pod_template_fails_no_call(
    real_cluster: RealCluster, installed: Installed, tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:  # fmt: skip
    before = pod_names(real_cluster, installed.namespace)
    load = start_load(real_cluster, installed)
    try:
        changed = {**installed.values, "server": {"logLevel": "debug"}}
        installed.release.install(changed, tmp_path, upgrade=True)
        wait_rollout(real_cluster, installed.namespace)
    finally:
        summary = finish(load, "helm upgrade", record_property)

    assert pod_names(real_cluster, installed.namespace).isdisjoint(before)
    assert summary.calls > 0
    assert summary.failed == 0, summary.failed_by_code


def test_rolling_restart_fails_no_call(
    real_cluster: RealCluster, installed: Installed,
    record_property: Callable[[str, object], None],
) -> None:  # fmt: skip
    before = pod_names(real_cluster, installed.namespace)
    load = start_load(real_cluster, installed)
    try:
        real_cluster.kubectl("rollout", "restart", f"deployment/{RELEASE}",
                             "-n", installed.namespace)  # fmt: skip
        wait_rollout(real_cluster, installed.namespace)
    finally:
        summary = finish(load, "rollout restart", record_property)

    assert pod_names(real_cluster, installed.namespace).isdisjoint(before)
    assert summary.failed == 0, summary.failed_by_code


def test_deleting_a_pod_fails_no_call(
    real_cluster: RealCluster, installed: Installed,
    record_property: Callable[[str, object], None],
) -> None:  # fmt: skip
    victim = sorted(pod_names(real_cluster, installed.namespace))[0]
    load = start_load(real_cluster, installed)
    try:
        # Default grace: the kubelet runs preStop, then SIGTERM; the Deployment replaces it.
        real_cluster.kubectl("delete", "pod", victim, "-n", installed.namespace)
        wait_rollout(real_cluster, installed.namespace)
        real_cluster.kubectl("wait", "--for=condition=Ready", "pod", "-l", SELECTOR,
                             "-n", installed.namespace, "--timeout=2m")  # fmt: skip
    finally:
        summary = finish(load, "pod deletion", record_property)

    assert victim not in pod_names(real_cluster, installed.namespace)
    assert summary.failed == 0, summary.failed_by_code
