"""Usage survives a configuration reload, as it survives `pulumi up`: Pulumi never owns it."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx

from provision.local.runtime import LocalGateway
from tests.support import E2E_STACK, WorkerTestHooks, eventually, key


def test_reload_keeps_usage_and_reservations_stay_exact(tmp_path: Path):
    """After a reload (new records, restarted workerd) the ledger still holds every cent."""
    stack = tmp_path / "Pulumi.e2e.yaml"
    shutil.copy(E2E_STACK, stack)
    with LocalGateway(stack, test_hooks=True) as gateway:
        hooks = WorkerTestHooks(gateway.worker_url)
        url = f"{gateway.openai_base_url}/chat/completions"
        headers = {"authorization": f"Bearer {key('key_payer_main')}"}
        body = {"messages": [{"role": "user", "content": "persist emulate:tokens=9"}]}
        costs = [
            int(
                httpx.post(url, json=body, headers=headers, timeout=30)
                .headers["x-gateway-cost-usd"]
                .replace(".", "")
            )
            for _ in range(3)
        ]
        eventually(lambda: hooks.user_row("acme", "payer")["requests"] >= 3)
        before = hooks.user_row("acme", "payer")
        assert before["usedMicros"] == sum(costs)

        # A config change, applied like `pulumi up`: the Worker restarts with new records.
        stack.write_text(
            stack.read_text().replace("monthlyLimitUsd: 100\n", "monthlyLimitUsd: 150\n", 1)
        )
        gateway.reload()

        assert hooks.user_row("acme", "payer") == before
        after = httpx.post(url, json=body, headers=headers, timeout=30)
        assert after.status_code == 200
        usage_header = int(after.headers["x-gateway-usage-usd"].replace(".", ""))
        assert usage_header == sum(costs) + int(
            after.headers["x-gateway-cost-usd"].replace(".", "")
        )
        hooks.close()
