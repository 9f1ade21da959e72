"""Keys stored on the gateway (BYOK), by name (issue 24): a provider without a key in the
Worker's secrets is called with only `cf-aig-authorization`, and with `cf-aig-byok-alias` when
the stack names which stored key (`routing.byokAliases`); never a provider key header beside it
(AI Gateway refuses BYOK with one). The local run stores Anthropic's key on the emulated gateway."""

from __future__ import annotations

import json
from collections.abc import Iterator

import anthropic
import openai
import pytest

from provision.local.runtime import LocalGateway, LocalSecrets
from tests.support import ROOT, Emulator, key

STACK = ROOT / "tests" / "fixtures" / "Pulumi.providers.yaml"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalGateway]:
    text = STACK.read_text(encoding="utf-8")
    edited = text.replace(
        "    awsBedrock: {region: us-east-1}\n",
        "    awsBedrock: {region: us-east-1}\n    byokAliases: {anthropic: team-prod}\n",
    )
    assert edited != text
    path = tmp_path_factory.mktemp("byok") / "Pulumi.byok.yaml"
    path.write_text(edited, encoding="utf-8")
    secrets = LocalSecrets(byok_providers=frozenset({"anthropic", "openai"}))
    with LocalGateway(path, test_hooks=True, local_secrets=secrets) as running:
        yield running


def test_a_stored_key_is_named_by_its_alias_and_no_key_travels(
    gateway: LocalGateway, upstream: Emulator
):
    client = anthropic.Anthropic(
        base_url=gateway.worker_url, api_key=key("key_pa_main"), max_retries=0
    )
    raw = client.messages.with_raw_response.create(
        model="claude-sonnet-4-5", max_tokens=32, messages=[{"role": "user", "content": "Hi"}]
    )
    assert raw.parse().content
    logged = upstream.request_for(raw.headers["x-request-id"])
    headers = logged["headers"]
    assert headers["cf-aig-byok-alias"] == "team-prod"
    assert headers["cf-aig-authorization"] == f"Bearer {gateway.secrets.ai_gateway_token}"
    assert not {"x-api-key", "authorization"} & set(headers), "no provider key beside BYOK"
    assert "anthropic" not in gateway.secrets.provider_api_keys
    assert key("key_pa_main") not in json.dumps(logged)


def test_a_stored_key_without_an_alias_is_the_gateways_default(
    gateway: LocalGateway, upstream: Emulator
):
    client = openai.OpenAI(
        base_url=f"{gateway.worker_url}/v1", api_key=key("key_po_main"), max_retries=0
    )
    raw = client.chat.completions.with_raw_response.create(
        model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}]
    )
    assert raw.parse().choices
    headers = upstream.request_for(raw.headers["x-request-id"])["headers"]
    assert "cf-aig-byok-alias" not in headers and "authorization" not in headers
