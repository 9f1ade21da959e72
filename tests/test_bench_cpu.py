"""make bench's CPU column: the CPU time of the processes under a runtime, found by name."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tests.bench import cpu

BURN = "import time\nend = time.process_time() + 0.4\nwhile time.process_time() < end: pass\n"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")
def test_cpu_of_a_runtimes_children_counts_their_work_and_not_the_parents(tmp_path):
    script = tmp_path / "burner.py"
    script.write_text(f"import sys\nsys.stdin.readline()\n{BURN}sys.stdin.readline()\n")
    # a parent (sh) with the child that burns; the parent's own CPU is not counted
    parent = subprocess.Popen(
        ["sh", "-c", f"exec 3<&0; {sys.executable} {script} <&3"],
        stdin=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(0.3)
        cpu.register("http://127.0.0.1:1", parent.pid, name="python")
        assert cpu.WORKERD["http://127.0.0.1:1"], "the child was not found"
        assert cpu.cpu_seconds("http://127.0.0.1:12") is None  # another port is not this runtime
        before = cpu.cpu_seconds("http://127.0.0.1:1/v1/chat")
        assert before is not None
        assert parent.stdin is not None
        parent.stdin.write("go\n")
        parent.stdin.flush()
        time.sleep(0.8)
        after = cpu.cpu_seconds("http://127.0.0.1:1")
        assert after is not None and after - before >= 0.3
    finally:
        parent.kill()
        parent.wait()
        cpu.WORKERD.pop("http://127.0.0.1:1", None)
