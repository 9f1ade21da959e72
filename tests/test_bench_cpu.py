"""make bench's CPU column: the CPU time of the processes under a runtime, found by name."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.bench import cpu

BURN = "import time\nend = time.process_time() + {s}\nwhile time.process_time() < end: pass\n"
# the child: waits for "go", burns 0.4 s of CPU, says so, and lives until told to end
CHILD = (
    "import sys\nsys.stdin.readline()\n"
    + BURN.format(s=0.4)
    + ("print('burnt', flush=True)\nsys.stdin.readline()\n")
)
# the parent (the runtime): starts the child, passes "go" on, burns 1.0 s itself, then relays
PARENT = (
    "import subprocess, sys\n"
    "child = subprocess.Popen([sys.executable, sys.argv[1]], stdin=subprocess.PIPE,"
    " stdout=subprocess.PIPE, text=True)\n"
    "print('ready', flush=True)\n"
    "child.stdin.write(sys.stdin.readline()); child.stdin.flush()\n"
    + BURN.format(s=1.0)
    + "print(child.stdout.readline().strip(), flush=True)\n"
    "child.stdin.write(sys.stdin.readline()); child.stdin.flush(); child.wait()\n"
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")
def test_cpu_of_a_runtimes_children_counts_their_work_and_not_the_parents(tmp_path):
    (tmp_path / "child.py").write_text(CHILD)
    (tmp_path / "parent.py").write_text(PARENT)
    parent = subprocess.Popen(
        [sys.executable, str(tmp_path / "parent.py"), str(tmp_path / "child.py")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    url = "http://127.0.0.1:1"
    try:
        assert parent.stdin is not None and parent.stdout is not None
        assert parent.stdout.readline().strip() == "ready"
        cpu.register(url, parent.pid, name="python")  # the child only: the parent is no child
        assert len(cpu.SERVERS[url]) == 1
        assert cpu.cpu_seconds("http://127.0.0.1:12") is None  # another port is not this runtime
        before = cpu.cpu_seconds(f"{url}/v1/chat")
        assert before is not None
        parent.stdin.write("go\n")
        parent.stdin.flush()
        assert parent.stdout.readline().strip() == "burnt"  # both have burnt theirs
        after = cpu.cpu_seconds(url)
        assert after is not None
        # the child's 0.4 s (scheduling aside), not the parent's 1.0 s besides
        assert 0.3 <= after - before < 0.9
        parent.stdin.write("end\n")
        parent.stdin.flush()
        parent.wait(timeout=30)
    finally:
        parent.kill()
        parent.wait()
        cpu.forget(url)
