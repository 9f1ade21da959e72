"""A tenant's stored responses are its own (issue 22). Every tenant calls through the gateway's
one provider account, so carol could continue alice's stored conversation (its turns were in her
context upstream) and tell which ids exist. Now the gateway records each stored response's ids
with their owner and refuses a request that names one its caller does not own, exactly as it
refuses an unknown id, before anything goes upstream; an org may let its users share them."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from provision.local.runtime import LocalGateway
from tests.support import ROOT, Emulator, key, openai_client, stack_gateway

gateway = stack_gateway(ROOT / "tests" / "fixtures" / "Pulumi.stored.yaml")

SECRET = "The launch code is tangerine-47. emulate:tokens=5"


def client(gateway: LocalGateway, who: str) -> openai.OpenAI:
    return openai_client(gateway.openai_base_url, f"key_{who}_main")


def store(gateway: LocalGateway, who: str, *, stream: bool = False) -> Any:
    """`who`'s stored response (streamed or not)."""
    responses = client(gateway, who).responses
    if not stream:
        return responses.create(model="gpt-4o-mini", input=SECRET)
    with responses.stream(model="gpt-4o-mini", input=SECRET) as events:
        return events.get_final_response()


def refused(
    gateway: LocalGateway, upstream: Emulator, who: str, **continuing: Any
) -> dict[str, Any]:
    """`who`'s request naming a stored object is a 404, and nothing of it went upstream."""
    sent = len(upstream.requests())
    body = {"model": "gpt-4o-mini", "input": "And what was it? emulate:tokens=3", **continuing}
    response = httpx.post(
        f"{gateway.openai_base_url}/responses",
        json=body,
        headers={"authorization": f"Bearer {key(f'key_{who}_main')}"},
        timeout=30,
    )
    assert response.status_code == 404, response.text
    assert len(upstream.requests()) == sent, "a refused continuation went upstream"
    error: dict[str, Any] = response.json()["error"]
    return error


@pytest.mark.parametrize("stream", [False, True], ids=["answer", "stream"])
def test_another_org_cannot_continue_a_stored_response(
    gateway: LocalGateway, upstream: Emulator, stream: bool
):
    """oz (another org) names ann's stored response: the same 404 as for an id that never
    existed, and nothing goes upstream."""
    stored = store(gateway, "ann", stream=stream)
    foreign = refused(gateway, upstream, "oz", previous_response_id=stored.id)
    unknown = refused(gateway, upstream, "oz", previous_response_id="resp_" + "0" * 48)
    assert (foreign["code"], foreign["param"]) == (
        "previous_response_not_found",
        "previous_response_id",
    )
    assert foreign == {
        **unknown,
        "message": unknown["message"].replace("resp_" + "0" * 48, stored.id),
    }


def test_a_colleague_cannot_continue_it_unless_the_org_shares(
    gateway: LocalGateway, upstream: Emulator
):
    """ben (ann's org, which keeps them apart) is refused; sue may continue sam's (their org
    shares); the owner always may, and her continuation reads her stored turn upstream."""
    ann = store(gateway, "ann")
    refused(gateway, upstream, "ben", previous_response_id=ann.id)
    again = client(gateway, "ann").responses.create(
        model="gpt-4o-mini", input="And what was it?", previous_response_id=ann.id
    )
    assert again.usage is not None and again.usage.input_tokens > ann.usage.input_tokens
    sam = store(gateway, "sam")
    sue = client(gateway, "sue").responses.create(
        model="gpt-4o-mini", input="And what was it?", previous_response_id=sam.id
    )
    assert sue.status == "completed"


def test_an_item_reference_is_owned_like_its_response(gateway: LocalGateway, upstream: Emulator):
    """An input item_reference to another tenant's stored output item is refused as unknown."""
    item = store(gateway, "ann").output[-1].id
    error = refused(gateway, upstream, "oz", input=[{"type": "item_reference", "id": item}])
    assert (error["code"], error["param"]) == ("item_not_found", "input[0].id")


def test_a_conversation_is_never_the_gateways_to_continue(
    gateway: LocalGateway, upstream: Emulator
):
    """The Conversations API is not served, so no conversation id is any tenant's: each is
    refused as unknown, before anything goes upstream."""
    error = refused(gateway, upstream, "ann", conversation="conv_" + "1" * 48)
    assert error["code"] == "conversation_not_found"


def test_a_stored_response_is_never_answered_from_the_cache(
    gateway: LocalGateway, upstream: Emulator
):
    """The org caches, but a response the provider stores is its caller's: never a cache HIT
    (whose id would be a colleague's); an unstored one is cached as usual."""
    stored = [store(gateway, "ann").id for _ in range(2)]
    assert len(set(stored)) == 2
    unstored = {"model": "gpt-4o-mini", "input": SECRET, "store": False}
    first, second = (
        httpx.post(
            f"{gateway.openai_base_url}/responses",
            json=unstored,
            headers={"authorization": f"Bearer {key('key_ann_main')}"},
            timeout=30,
        )
        for _ in range(2)
    )
    assert (first.headers["cf-aig-cache-status"], second.headers["cf-aig-cache-status"]) == (
        "MISS",
        "HIT",
    )


@pytest.mark.parametrize("stream", [False, True], ids=["answer", "stream"])
@pytest.mark.parametrize("store_it", [True, False], ids=["stored", "unstored"])
def test_a_code_interpreter_container_is_its_creators(
    gateway: LocalGateway, upstream: Emulator, stream: bool, store_it: bool
):
    """ann's code runs in a new container (stored response or not, streamed or not); oz (another
    org) and ben (her colleague, whose org keeps them apart) naming it get the 404 of a container
    that never existed, nothing sent upstream; ann runs code in it again."""
    tools: Any = [{"type": "code_interpreter", "container": {"type": "auto"}}]
    ask = "Add up 0 to 9. emulate:code emulate:tokens=3"
    responses = client(gateway, "ann").responses
    if stream:
        with responses.stream(model="gpt-4o-mini", input=ask, tools=tools, store=store_it) as s:
            first = s.get_final_response()
    else:
        first = responses.create(model="gpt-4o-mini", input=ask, tools=tools, store=store_it)
    (call,) = [item for item in first.output if item.type == "code_interpreter_call"]
    container = call.container_id
    reuse = [{"type": "code_interpreter", "container": container}]
    for who in ("oz", "ben"):
        foreign = refused(gateway, upstream, who, tools=reuse)
        unknown = refused(
            gateway, upstream, who, tools=[{**reuse[0], "container": "cntr_" + "0" * 48}]
        )
        assert foreign["message"] == f"Container with id '{container}' not found."
        assert foreign == {**unknown, "message": foreign["message"]}
    again = responses.create(model="gpt-4o-mini", input=ask, tools=reuse, store=False)
    (rerun,) = [item for item in again.output if item.type == "code_interpreter_call"]
    assert rerun.container_id == container


def test_an_anthropic_container_is_never_named_through_the_gateway(
    gateway: LocalGateway, upstream: Emulator
):
    """Anthropic's code execution containers are not recorded per tenant, so a request naming
    one is refused (400 naming container), before anything goes upstream."""
    sent = len(upstream.requests())
    body = {
        "model": "claude-haiku-4-5",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": "Again"}],
        "container": "container_011CSomebodyElses",
    }
    response = httpx.post(
        f"{gateway.worker_url}/v1/messages",
        json=body,
        headers={"x-api-key": key("key_ann_main"), "anthropic-version": "2023-06-01"},
        timeout=30,
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["message"].startswith("container: reusing")
    assert len(upstream.requests()) == sent
