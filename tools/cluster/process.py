"""Start, find and stop the control-plane processes this tool itself started.

Each started process gets a pid record (pid + start time + executable) in the state
directory. Stopping checks that record against `ps` before sending a signal, so a pid
the kernel has since reused for someone else's process is never touched. `ps -o
lstart=,stat=` reads the same on Linux (procps) and macOS (BSD ps).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

STOP_TIMEOUT_S = 15.0
PORT_FREE_TIMEOUT_S = 10.0
POLL_S = 0.1


@dataclass(frozen=True)
class PidRecord:
    """Identity of a started process, stable across pid reuse."""

    pid: int
    started: str
    executable: str


def _ps(pid: int) -> tuple[str, str] | None:
    """(start time, state) of a process, or None when there is no such process."""
    result = subprocess.run(
        ["ps", "-o", "lstart=", "-o", "stat=", "-p", str(pid)],  # noqa: S607 - from PATH
        capture_output=True,
        text=True,
        check=False,
    )
    started, _, state = result.stdout.strip().rpartition(" ")
    return (started.strip(), state) if result.returncode == 0 and state else None


def is_alive(record: PidRecord) -> bool:
    """True if the recorded process still runs (a zombie counts as exited)."""
    found = _ps(record.pid)
    return found is not None and not found[1].startswith("Z") and found[0] == record.started


def start(argv: list[str], log_path: Path, pid_path: Path) -> PidRecord:
    """Start argv detached in its own session, output appended to log_path."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        log.write(f"\n--- started {time.strftime('%Y-%m-%dT%H:%M:%S')}: {argv[0]}\n".encode())
        log.flush()
        # A new session so Ctrl-C in the terminal that ran `make cluster-up` (or the
        # end of the pytest process) does not take the cluster down with it.
        child = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    found = _ps(child.pid)
    record = PidRecord(child.pid, found[0] if found else "", argv[0])
    pid_path.parent.mkdir(parents=True, exist_ok=True)
    pid_path.write_text(json.dumps(asdict(record)))
    return record


def read_record(pid_path: Path) -> PidRecord | None:
    try:
        data = json.loads(pid_path.read_text())
        return PidRecord(int(data["pid"]), str(data["started"]), str(data["executable"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _reap(pid: int) -> None:
    """Collect the exit status if the process is our own child (avoids zombies)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _wait_gone(record: PidRecord, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while True:
        _reap(record.pid)
        if not is_alive(record):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_S)


def stop(record: PidRecord, timeout_s: float = STOP_TIMEOUT_S) -> bool:
    """SIGTERM, then SIGKILL after timeout_s. True if it had to be killed."""
    for sig, wait_s in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 5.0)):
        if not is_alive(record):
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(record.pid, sig)
        if _wait_gone(record, wait_s):
            return sig == signal.SIGKILL
    return True


def port_is_free(port: int) -> bool:
    """True if 127.0.0.1:port can be bound (the way a server would bind it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_ports_free(ports: list[int], timeout_s: float = PORT_FREE_TIMEOUT_S) -> list[int]:
    """Wait until every port is free; returns those still busy at the deadline."""
    deadline = time.monotonic() + timeout_s
    while (busy := [port for port in ports if not port_is_free(port)]) and (
        time.monotonic() < deadline
    ):
        time.sleep(POLL_S)
    return busy


def pick_free_ports(count: int) -> list[int]:
    """Distinct free loopback ports from the kernel's ephemeral range.

    All sockets stay open until every port is chosen, so the same port is never
    returned twice; another program could still take one before we bind it, which
    cluster-up reports as a crashed component.
    """
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def log_tail(log_path: Path, lines: int = 30) -> str:
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])
