"""Repository-wide pytest setup: shared plugins registered once so every test folder sees them."""

# Real-cluster fixtures (kube_cluster, kubectl, namespace); see e2e/cluster_fixtures.py.
pytest_plugins = [
    # First: sets GRPC_SSL_CIPHER_SUITES before anything imports grpc (server/cipher_policy.py).
    "server.tests.cipher_policy_plugin",
    "e2e.cluster_fixtures",
    # The ReplicaTarget CRD for every cluster-marked test; see e2e/reconciler_fixtures.py.
    "e2e.reconciler_fixtures",
]
