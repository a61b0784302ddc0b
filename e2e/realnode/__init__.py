"""e2e tests on a real node: kubelet, containerd and kube-proxy run the chart's pods."""
