"""The reconciler: drives each Deployment to its ReplicaTarget's count, on the leader only."""
