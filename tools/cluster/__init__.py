"""Local Kubernetes control plane without Docker: etcd, kube-apiserver,
kube-controller-manager, kube-scheduler and kwok (fake nodes that run fake pods),
all on 127.0.0.1, from the binaries `make tools` builds.

Run as `python -m tools.cluster up|down|status|env|stop-apiserver|start-apiserver`;
the e2e fixtures use `tools.cluster.control` directly. Standard library only, so it
works before the project venv exists.
"""
