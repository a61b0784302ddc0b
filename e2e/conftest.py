"""e2e tests: behaviour against a real API server.

The cluster fixtures (`kube_cluster`, `kubectl`, `namespace`) live in
e2e/cluster_fixtures.py and are registered for the whole repository from the root
conftest.py, so other test folders can use them too. Every test collected here needs
a cluster, so each one gets the `cluster` marker (`pytest -m "not cluster"` skips them).
"""

from __future__ import annotations

from pathlib import Path

import pytest

E2E_DIR = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if E2E_DIR in item.path.parents:
            item.add_marker(pytest.mark.cluster)
