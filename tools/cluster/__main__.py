"""Command line of the local control plane (`python -m tools.cluster --help`)."""

from __future__ import annotations

import argparse
import sys

from tools.cluster.components import APISERVER
from tools.cluster.control import Cluster, ClusterError, locked, say
from tools.cluster.paths import resolve_state_dir

COMMANDS = {
    "up": "start every component that is not running, wait until Ready",
    "down": "stop the processes this tool started, free their ports, remove state",
    "stop-apiserver": "stop only kube-apiserver (state and port are kept)",
    "start-apiserver": "start kube-apiserver again on the same port and wait for /readyz",
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tools.cluster",
        description="Local Kubernetes control plane (etcd, apiserver, controllers, kwok).",
        epilog="\n".join(f"  {name:<16} {text}" for name, text in COMMANDS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=sorted(COMMANDS))
    parser.add_argument(
        "--state-dir",
        help="cluster state folder (default: $REPLICANT_CLUSTER_DIR or <repo>/.cache/cluster)",
    )
    return parser.parse_args(argv)


def run(command: str, cluster: Cluster) -> int:
    if command == "down" and not cluster.layout.root.exists():
        say(f"no cluster state in {cluster.layout.root}; nothing to do")
        return 0
    with locked(cluster.layout):
        if command == "up":
            cluster.up()
            say(f"cluster ready in {cluster.elapsed()}")
            print(f"export KUBECONFIG={cluster.layout.admin_kubeconfig}")
        elif command == "down":
            cluster.down()
        elif command == "stop-apiserver":
            cluster.stop_component(APISERVER)
        elif command == "start-apiserver":
            cluster.start_apiserver()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    cluster = Cluster(resolve_state_dir(args.state_dir))
    try:
        return run(args.command, cluster)
    except ClusterError as err:
        print(f"[cluster] ERROR: {err}", file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
