"""The local control plane (docs/devenv.md): envtest's idea, a real kube-apiserver and etcd run
as plain processes, plus the controller manager, the scheduler and kwok's fake node, on 127.0.0.1.
"""
