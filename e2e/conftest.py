"""e2e tests: behaviour against a real API server.

The cluster fixtures (`kube_cluster`, `kubectl`, `namespace`) live in
e2e/cluster_fixtures.py and are registered for the whole repository from the root
conftest.py, so other test folders can use them too. Every test collected here needs
a cluster, so each one gets the `cluster` marker (`pytest -m "not cluster"` skips them).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tools import devcerts

E2E_DIR = Path(__file__).parent


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One dev PKI for the e2e session (CA, server, reader/writer/nobody, an untrusted CA).

    Read-only for tests: a test that rotates certificates makes its own copy."""
    out = tmp_path_factory.mktemp("pki")
    devcerts.generate(out)
    return out


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if E2E_DIR in item.path.parents:
            item.add_marker(pytest.mark.cluster)
