"""CPU time of the workerd processes behind a URL, per request: what Workers bills (CPU time),
and a steadier figure than throughput on a machine whose two cores the client and the emulator
share. Linux only (/proc); elsewhere the figures are None."""

from __future__ import annotations

import os
from pathlib import Path

TICKS_PER_S = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
# url → the processes serving it (a runtime's workerd children, a peer's server), as each starts
SERVERS: dict[str, list[int]] = {}


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        children = (task / "children").read_text().split() if (task / "children").exists() else []
        for child in map(int, children):
            found += [child, *_children(child)]
    return found


def register(url: str, runtime_pid: int, name: str = "workerd") -> None:
    """The `name` processes (workerd) under the process that started them, serving `url`."""
    try:
        SERVERS[url] = [
            pid
            for pid in _children(runtime_pid)
            if Path(f"/proc/{pid}/comm").read_text().strip().startswith(name)
        ]
    except OSError:
        SERVERS[url] = []


def register_tree(url: str, pid: int) -> None:
    """A server process and every process under it (a peer's workers), serving `url`."""
    try:
        SERVERS[url] = [pid, *_children(pid)]
    except OSError:
        SERVERS[url] = [pid]


def forget(url: str) -> None:
    """The processes serving `url` are gone (a later server may take its port)."""
    SERVERS.pop(url, None)


def cpu_seconds(url: str) -> float | None:
    """User + system CPU so far of the workerd processes serving `url` (None: not known)."""
    pids = next(
        (pids for base, pids in SERVERS.items() if f"{url}/".startswith(f"{base.rstrip('/')}/")),
        None,
    )
    if not pids:
        return None
    total = 0
    try:
        for pid in pids:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    except OSError:
        return None
    return total / TICKS_PER_S
