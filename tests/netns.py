"""Run a client in a network of its own, where the only address that answers is the gateway's.

`unshare -rn` gives the process a new user and network namespace with nothing but a loopback
interface: any connection to anywhere else fails at once (ENETUNREACH), on any machine, whether
or not it has internet. Inside it, a forwarder listens on 127.0.0.1:PORT and carries each
connection over a Unix socket (file system paths cross network namespaces) to a bridge outside,
which connects to the gateway (or the recording proxy in front of it). So a client that phones
home, checks for updates or needs the internet fails its case instead of passing on a machine
that happens to be online.

    python -m tests.netns SOCKET PORT -- COMMAND ...   (inside the namespace; see run())
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for end in (sink, source):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _join(a: socket.socket, b: socket.socket) -> None:
    threading.Thread(target=_pipe, args=(a, b), daemon=True).start()
    threading.Thread(target=_pipe, args=(b, a), daemon=True).start()


class Bridge:
    """Outside the namespace: a Unix socket whose connections go on to 127.0.0.1:`port`."""

    def __init__(self, port: int):
        self._dir = tempfile.TemporaryDirectory(prefix="llm-gateway-netns-")
        self.path = str(Path(self._dir.name) / "gateway.sock")
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(self.path)
        self._server.listen(64)
        self._port = port
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self._port))
            except OSError:
                client.close()
                continue
            _join(client, upstream)

    def close(self) -> None:
        self._server.close()
        self._dir.cleanup()


def run(
    command: list[str], *, port: int, cwd: Path, env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """`command` in its own network namespace, where 127.0.0.1:`port` (the same port number as
    outside) reaches 127.0.0.1:`port` outside, and nothing else answers."""
    bridge = Bridge(port)
    try:
        inside = [sys.executable, "-m", "tests.netns", bridge.path, str(port), "--", *command]
        root = str(Path(__file__).resolve().parent.parent)
        return subprocess.run(
            ["unshare", "--user", "--map-root-user", "--net", *inside],
            cwd=cwd,
            env={**env, "PYTHONPATH": root},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    finally:
        bridge.close()


def _inside(unix_path: str, port: int, command: list[str]) -> int:
    ip = shutil.which("ip", path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin") or "ip"
    subprocess.run([ip, "link", "set", "lo", "up"], check=True)
    listener = socket.create_server(("127.0.0.1", port))

    def serve() -> None:
        while True:
            client, _ = listener.accept()
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(unix_path)
            _join(client, upstream)

    threading.Thread(target=serve, daemon=True).start()
    return subprocess.run(command, env=os.environ).returncode


if __name__ == "__main__":
    unix_path, port, separator, *command = sys.argv[1:]
    assert separator == "--", "usage: python -m tests.netns SOCKET PORT -- COMMAND ..."
    sys.exit(_inside(unix_path, int(port), command))
