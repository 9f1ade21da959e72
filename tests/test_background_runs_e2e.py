"""Background runs are charged when they end (issue 22). `background: true` makes OpenAI answer
"queued" at once and bill the run later, after the request is over: the gateway charged nothing
for it. Now an org must allow them (allowUnpriced, else a 400 naming the field), and each run
is watched by the org's ledger: its reservation is held until it ends, the ledger polls it
through AI Gateway, and the usage the finished run reports is charged to the user who started
it, whether or not anyone retrieves it. Its owner reads it through the gateway; nobody else can.

Stack: fixtures/Pulumi.priced.yaml (lou's org allows it, pia's does not)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from provision.local.runtime import LocalGateway
from tests.charges import cost_of
from tests.support import (
    ROOT,
    Emulator,
    WorkerTestHooks,
    eventually,
    key,
    openai_client,
    stack_gateway,
)

gateway = stack_gateway(ROOT / "tests" / "fixtures" / "Pulumi.priced.yaml")

MINI = "openai/gpt-4o-mini"


def headers_of(who: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key(f'key_{who}_main')}"}


def admin_usage(gateway: LocalGateway, user: str) -> dict[str, Any]:
    response = httpx.get(
        f"{gateway.worker_url}/admin/users/{user}/usage",
        headers={"authorization": f"Bearer {gateway.secrets.admin_api_key}"},
        timeout=30,
    )
    response.raise_for_status()
    usage: dict[str, Any] = response.json()
    return usage


def start(gateway: LocalGateway, who: str, run_ms: int) -> httpx.Response:
    body = {
        "model": "gpt-4o-mini",
        "input": f"Write the long report. emulate:run_ms={run_ms} emulate:tokens=40",
        "background": True,
    }
    return httpx.post(
        f"{gateway.openai_base_url}/responses", json=body, headers=headers_of(who), timeout=30
    )


def test_a_background_run_is_charged_when_it_ends(
    gateway: LocalGateway, upstream: Emulator, ledger: WorkerTestHooks
):
    """lou starts a run that takes 1.5 s: the answer is "queued" with no cost, the run's worst
    case is held meanwhile, and when it ends the ledger records exactly the usage the finished
    run reports (nobody retrieved it); then lou reads it, complete, through the gateway."""
    before = ledger.user_row("lenient", "lou")
    response = start(gateway, "lou", 1500)
    assert response.status_code == 200, response.text
    queued = response.json()
    assert (queued["status"], queued["background"], queued["usage"]) == ("queued", True, None)
    assert "x-gateway-cost-usd" not in response.headers
    held = admin_usage(gateway, "lou")["reservedMicros"]
    assert held > 0, "the run's worst case is not held while it runs"
    assert ledger.user_row("lenient", "lou")["requests"] == before["requests"]

    after = eventually(
        lambda: (r := ledger.user_row("lenient", "lou"))["requests"] > before["requests"] and r,
        timeout=20,
    )
    assert admin_usage(gateway, "lou")["reservedMicros"] == 0
    polls = [
        e
        for e in upstream.requests(userId="lou")
        if e["method"] == "GET" and e["path"].endswith(f"/openai/responses/{queued['id']}")
    ]
    assert polls, "the ledger never polled the run"

    finished = openai_client(gateway.openai_base_url, "key_lou_main").responses.retrieve(
        queued["id"]
    )
    assert finished.status == "completed"
    assert finished.usage is not None and finished.usage.output_tokens == 40
    usage = {"prompt": finished.usage.input_tokens, "completion": finished.usage.output_tokens}
    assert after["usedMicros"] - before["usedMicros"] == cost_of(gateway, MINI, usage)
    assert after["estimated"] == before["estimated"]


def test_a_run_is_read_by_its_owner_only(gateway: LocalGateway, upstream: Emulator):
    """pia (another org) gets the 404 of an id that never existed, and nothing is asked
    upstream; lou reads it while it runs, and after."""
    run = start(gateway, "lou", 300).json()
    sent = len(upstream.requests())
    for who, rid in (("pia", run["id"]), ("pia", "resp_" + "0" * 48)):
        response = httpx.get(
            f"{gateway.openai_base_url}/responses/{rid}", headers=headers_of(who), timeout=30
        )
        assert response.status_code == 404, response.text
        assert response.json()["error"]["message"] == f"Response with id '{rid}' not found."
    assert len(upstream.requests()) == sent
    client = openai_client(gateway.openai_base_url, "key_lou_main")
    states = {client.responses.retrieve(run["id"]).status}
    done = eventually(
        lambda: (r := client.responses.retrieve(run["id"])).status == "completed" and r
    )
    assert states <= {"queued", "in_progress", "completed"}
    assert done.output_text


@pytest.mark.parametrize(
    ("who", "extra", "param"),
    [("pia", {}, "background"), ("lou", {"stream": True}, "stream")],
    ids=["org does not allow", "streamed"],
)
def test_a_run_that_cannot_be_charged_is_refused(
    gateway: LocalGateway,
    upstream: Emulator,
    who: str,
    extra: dict[str, Any],
    param: str,
):
    """pia's org does not allow background runs; a streamed one could not be watched once the
    client left: both a 400 naming the field, nothing sent upstream."""
    sent = len(upstream.requests())
    body = {"model": "gpt-4o-mini", "input": "Later.", "background": True, **extra}
    response = httpx.post(
        f"{gateway.openai_base_url}/responses", json=body, headers=headers_of(who), timeout=30
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
    assert len(upstream.requests()) == sent


def test_a_run_that_cannot_be_seen_to_its_end_is_charged_its_worst_case(
    gateway: LocalGateway, upstream: Emulator, ledger: WorkerTestHooks
):
    """The provider no longer knows the run (404 to the ledger's poll): it is charged the worst
    case it was admitted for, flagged as an estimate, never nothing."""
    before = ledger.user_row("lenient", "lou")
    run = start(gateway, "lou", 60_000).json()
    upstream.fault(match={"path": f"/openai/responses/{run['id']}"}, status=404, times=10)
    held = admin_usage(gateway, "lou")["reservedMicros"]
    assert held > 0
    after = eventually(
        lambda: (r := ledger.user_row("lenient", "lou"))["requests"] > before["requests"] and r,
        timeout=20,
    )
    assert after["usedMicros"] - before["usedMicros"] == held
    assert after["estimated"] == before["estimated"] + 1
    assert admin_usage(gateway, "lou")["reservedMicros"] == 0
