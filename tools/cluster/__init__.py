"""The local control plane: envtest's idea (a real kube-apiserver and etcd run as plain
processes, no container, no kubelet) plus the controller manager, the scheduler and kwok
(a fake node that runs fake pods), all on 127.0.0.1, from the binaries `make tools` builds.

Run as `python -m tools.cluster up|down|stop-apiserver|start-apiserver` from the venv;
the e2e fixtures use `tools.cluster.control` directly.
"""
