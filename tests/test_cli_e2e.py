"""The commands a person types: `provision dev` (make dev) and `provision chat`."""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import time
from pathlib import Path

from openai import OpenAI

from provision.local.runtime import LocalGateway
from tests.support import ROOT, eventually, key, run_cli

PROVISION = ROOT / ".venv" / "bin" / "provision"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def descendants(pid: int) -> set[int]:
    """All live descendants of `pid`, read from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and ") Z " not in stat.read_text()


def test_provision_dev_serves_demo_tenants_and_stops_cleanly():
    """`make dev`'s command prints a working URL, keys and snippets; Ctrl-C leaves nothing behind."""
    port = free_port()
    process = subprocess.Popen(
        [str(PROVISION), "dev", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,  # like a terminal: Ctrl-C goes to the whole foreground group
    )
    try:
        banner = []
        deadline = time.monotonic() + 60
        for line in process.stdout:
            banner.append(line)
            if "Ctrl-C" in line or time.monotonic() > deadline:
                break
        text = "".join(banner)
        base = f"http://127.0.0.1:{port}/v1"
        assert base in text
        keys = dict(re.findall(r"^\s+(\w+)\s+(gw_live_\w+)$", text, re.M))
        assert set(keys) == {"alice", "bob", "carol"}
        assert keys["alice"] == key("key_alice_laptop")

        # The printed Python snippet works as printed.
        snippet = "\n".join(
            line.strip()
            for line in banner
            if line.strip().startswith(("from openai", "client =", "print("))
        )
        assert "OpenAI(base_url=" in snippet
        scope: dict = {"OpenAI": OpenAI}
        exec(snippet.replace("from openai import OpenAI", ""), scope)  # noqa: S102

        # The printed curl line works as printed.
        curl = next(line.strip() for line in banner if line.strip().startswith("curl "))
        out = subprocess.run(
            shlex.split(curl) + ["-s", "-w", "\n%{http_code}"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert out.stdout.rstrip().endswith("200"), out.stdout

        children = descendants(process.pid)
        assert children, "the dev server should run node and workerd"
    finally:
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(timeout=30) == 0
        process.stdout.close()
    assert eventually(lambda: not any(alive(pid) for pid in children), 10, 0.1), (
        "processes left behind after Ctrl-C"
    )


def run_chat(
    gateway: LocalGateway, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return run_cli("chat", "--base-url", gateway.openai_base_url, *args, stdin=stdin)


def test_chat_one_shot_streaming_and_not(gateway: LocalGateway):
    """`provision chat` prints the same answer streamed and not streamed."""
    plain = run_chat(gateway, "--api-key", key("key_ada_main"), "Hello there")
    streamed = run_chat(gateway, "--api-key", key("key_ada_main"), "--stream", "Hello there")
    assert plain.returncode == streamed.returncode == 0, plain.stderr + streamed.stderr
    assert len(plain.stdout.split()) == 12
    assert plain.stdout == streamed.stdout


def test_chat_interactive_keeps_the_conversation(gateway: LocalGateway, emulator):
    """Interactive mode sends the whole history each turn and quits on /exit."""
    result = run_chat(
        gateway,
        "--api-key",
        key("key_ada_main"),
        "--model",
        "claude-sonnet",
        stdin="first question\nsecond question\n/exit\n",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("assistant> ") == 2
    last = emulator.requests()[-1]
    assert [m["role"] for m in last["body"]["messages"]] == ["user", "assistant", "user"]


def test_chat_reports_gateway_errors(gateway: LocalGateway):
    """A refused key is reported with the gateway's message and a non-zero exit."""
    result = run_chat(gateway, "--api-key", "gw_live_" + "z" * 40, "hi")
    assert result.returncode == 1
    assert "HTTP 401 [invalid_api_key]" in result.stderr


def test_output_into_a_closed_pipe_stops_quietly():
    """`provision … | head`: when the reader has gone, the command stops without a traceback
    (exit 141, as a Unix tool killed by SIGPIPE reports it)."""
    process = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "provision"), "schema"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # gone before the command has started writing
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=60) == 141
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr
