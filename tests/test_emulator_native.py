"""The emulator's provider-native OpenAI-wire paths (cf-contract-2 1.1).

`/openai/v1/...` besides `/openai/...`, and the OpenAI-compatible providers at their AI Gateway
paths (groq, mistral, deepseek, grok, google-ai-studio): OpenAI's chat wire format, each
provider's key from `providerKeys.<slug>`, each provider's own error body for a bad key.
"""

from __future__ import annotations

import math
from typing import Any

import httpx
import openai
import pytest

from tests.emulator_support import (
    ACCOUNT,
    OPENAI_KEY,
    TOKEN,
    WORD,
    add_fault,
    emulator_fixtures,
)

GATEWAY = "native-gw"
BYOK_GATEWAY = "native-byok"  # groq's key stored on the gateway
KEYS = {
    "openai": OPENAI_KEY,
    "groq": "gsk-local-groq",
    "mistral": "mistral-local-key",
    "deepseek": "sk-local-deepseek",
    "grok": "xai-local-grok-key",
    "google-ai-studio": "AIza-local-gemini",
}
CONFIG: dict[str, Any] = {
    "accountId": ACCOUNT,
    "gateways": {
        GATEWAY: {"authentication": True, "token": TOKEN},
        BYOK_GATEWAY: {"authentication": False, "byokProviders": ["groq"]},
    },
    "providerKeys": KEYS,
}
# (provider slug, OpenAI SDK base path under the gateway, model)
ROUTES = [
    ("openai", "openai", "gpt-4o-mini"),
    ("openai", "openai/v1", "gpt-4o-mini"),
    ("groq", "groq", "llama-3.3-70b-versatile"),
    ("mistral", "mistral/v1", "mistral-small-latest"),
    ("deepseek", "deepseek", "deepseek-chat"),
    ("grok", "grok/v1", "grok-4"),
    ("grok", "grok", "grok-4"),
    ("google-ai-studio", "google-ai-studio/v1beta/openai", "gemini-2.5-flash"),
]


emulator_url, http = emulator_fixtures(CONFIG, "native")


def base(gateway: str = GATEWAY) -> str:
    return f"/v1/{ACCOUNT}/{gateway}"


def sdk(emulator_url: str, path: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{emulator_url}{base()}/{path}",
        api_key=key,
        default_headers={"cf-aig-authorization": f"Bearer {TOKEN}"},
        max_retries=0,
    )


def post(http: httpx.Client, path: str, body: dict[str, Any], key: str | None) -> httpx.Response:
    headers = {"cf-aig-authorization": f"Bearer {TOKEN}"}
    if key is not None:
        headers["authorization"] = f"Bearer {key}"
    return http.post(f"{base()}/{path}", json=body, headers=headers)


def chat(model: str, content: str = "Hello", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}


@pytest.mark.parametrize(("slug", "path", "model"), ROUTES)
def test_openai_wire_chat_at_native_path(
    emulator_url: str, http: httpx.Client, slug: str, path: str, model: str
) -> None:
    """Each native path answers an OpenAI chat.completion (SDK-parsed) and logs its provider."""
    completion = sdk(emulator_url, path, KEYS[slug]).chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Hi"}]
    )
    assert completion.object == "chat.completion" and completion.model == model
    words = (completion.choices[0].message.content or "").split(" ")
    assert len(words) == 12 and all(WORD.match(w) for w in words)
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.completion_tokens == 12
    assert completion.usage.prompt_tokens == 3 + 4 + math.ceil(len(b"Hi") / 4)
    entry = http.get("/__emulator/requests", params={"limit": 1}).json()["requests"][0]
    assert (entry["provider"], entry["model"], entry["gatewayId"]) == (slug, model, GATEWAY)
    assert entry["path"] == f"{base()}/{path}/chat/completions"


@pytest.mark.parametrize(("slug", "path", "model"), ROUTES)
def test_native_path_streams_openai_chunks(
    emulator_url: str, slug: str, path: str, model: str
) -> None:
    """Streaming on a native path is OpenAI's chunk stream with the same text."""
    client = sdk(emulator_url, path, KEYS[slug])
    messages: list[Any] = [{"role": "user", "content": "stream"}]
    full = client.chat.completions.create(model=model, messages=messages)
    chunks = list(
        client.chat.completions.create(
            model=model, messages=messages, stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == full.choices[0].message.content
    assert chunks[-1].choices == [] and chunks[-1].usage is not None


def test_reply_is_the_same_on_every_route(http: httpx.Client) -> None:
    """The fake model only reads model and messages: all routes agree, compat included."""
    replies = {
        post(http, f"{p}/chat/completions", chat("same-model", "x"), KEYS[slug]).json()["choices"][
            0
        ]["message"]["content"]
        for slug, p, _ in ROUTES
    }
    compat = post(http, "compat/chat/completions", chat("groq/same-model", "x"), KEYS["groq"])
    replies.add(compat.json()["choices"][0]["message"]["content"])
    assert len(replies) == 1


def test_openai_v1_embeddings(http: httpx.Client) -> None:
    """/openai/v1/embeddings is the same endpoint as /openai/embeddings."""
    body = {"model": "text-embedding-3-small", "input": "alpha"}
    plain = post(http, "openai/embeddings", body, OPENAI_KEY).json()
    v1 = post(http, "openai/v1/embeddings", body, OPENAI_KEY).json()
    assert v1["object"] == "list" and v1["data"] == plain["data"]


@pytest.mark.parametrize(
    "path",
    [
        "groq/v1/chat/completions",
        "groq/openai/v1/chat/completions",
        "mistral/chat/completions",
        "deepseek/v1/chat/completions",
        "google-ai-studio/chat/completions",
        "google-ai-studio/v1beta/chat/completions",
        "groq/embeddings",
    ],
)
def test_paths_outside_the_host_strip_rule_are_404(http: httpx.Client, path: str) -> None:
    """Only the provider's own URL minus its host prefix exists under the gateway."""
    assert post(http, path, chat("m"), KEYS["groq"]).status_code == 404


def test_bad_keys_get_each_providers_error(http: httpx.Client) -> None:
    """A wrong key is rejected in the provider's own error shape and status."""
    bad = "wrong-key-1234"
    groq = post(http, "groq/chat/completions", chat("m"), bad)
    assert groq.status_code == 401
    assert groq.json()["error"]["message"] == "Invalid API Key"
    assert groq.json()["error"]["code"] == "invalid_api_key"
    deepseek = post(http, "deepseek/chat/completions", chat("m"), bad)
    assert deepseek.status_code == 401
    assert deepseek.json()["error"]["type"] == "authentication_error"
    assert deepseek.json()["error"]["message"].endswith("****1234 is invalid")
    mistral = post(http, "mistral/v1/chat/completions", chat("m"), bad)
    assert mistral.status_code == 401 and mistral.json()["message"] == "Unauthorized"
    grok = post(http, "grok/v1/chat/completions", chat("m"), bad)
    assert grok.status_code == 400
    assert grok.json()["error"].startswith("Incorrect API key provided: wr***34.")
    google = post(http, "google-ai-studio/v1beta/openai/chat/completions", chat("m"), bad)
    assert google.status_code == 400
    [item] = google.json()
    assert item["error"]["status"] == "INVALID_ARGUMENT"
    assert item["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    openai_v1 = post(http, "openai/v1/chat/completions", chat("m"), bad)
    assert openai_v1.status_code == 401
    assert openai_v1.json()["error"]["code"] == "invalid_api_key"


def test_each_provider_checks_its_own_key(http: httpx.Client) -> None:
    """providerKeys is per slug: another provider's key, or none, is rejected."""
    assert post(http, "groq/chat/completions", chat("m"), KEYS["mistral"]).status_code == 401
    assert post(http, "mistral/v1/chat/completions", chat("m"), KEYS["groq"]).status_code == 401
    assert post(http, "deepseek/chat/completions", chat("m"), None).status_code == 401
    for slug, path, model in ROUTES:
        assert post(http, f"{path}/chat/completions", chat(model), KEYS[slug]).status_code == 200


def test_sdk_raises_the_matching_error(emulator_url: str) -> None:
    """The OpenAI SDK turns those bodies into its usual exceptions."""
    with pytest.raises(openai.AuthenticationError, match="Invalid API Key"):
        sdk(emulator_url, "groq", "nope").chat.completions.create(
            model="m", messages=[{"role": "user", "content": "x"}]
        )
    with pytest.raises(openai.BadRequestError) as google:
        sdk(emulator_url, "google-ai-studio/v1beta/openai", "nope").chat.completions.create(
            model="m", messages=[{"role": "user", "content": "x"}]
        )
    assert google.value.status_code == 400
    assert isinstance(google.value.body, list)
    assert google.value.body[0]["error"]["message"].startswith("API key not valid")


def test_byok_provider_may_omit_its_key(http: httpx.Client) -> None:
    """A gateway with groq in byokProviders accepts groq requests without Authorization."""
    path = f"{base(BYOK_GATEWAY)}/groq/chat/completions"
    assert http.post(path, json=chat("m")).status_code == 200
    mistral = http.post(f"{base(BYOK_GATEWAY)}/mistral/v1/chat/completions", json=chat("m"))
    assert mistral.status_code == 401


def test_gateway_auth_still_applies(http: httpx.Client) -> None:
    """The provider key is not gateway auth: without cf-aig-authorization it is 401/2009."""
    response = http.post(
        f"{base()}/groq/chat/completions",
        json=chat("m"),
        headers={"authorization": f"Bearer {KEYS['groq']}"},
    )
    assert response.status_code == 401 and response.json()["internalCode"] == 2009


def test_fault_without_body_uses_provider_shape(http: httpx.Client) -> None:
    """A status-only fault answers in the provider's error shape (Google: a wrapped list)."""
    add_fault(http, match={"provider": "google-ai-studio"}, status=429)
    response = post(
        http, "google-ai-studio/v1beta/openai/chat/completions", chat("m"), KEYS["google-ai-studio"]
    )
    assert response.status_code == 429
    assert response.json()[0]["error"]["status"] == "RESOURCE_EXHAUSTED"
    add_fault(http, match={"provider": "mistral"}, status=503)
    mistral = post(http, "mistral/v1/chat/completions", chat("m"), KEYS["mistral"])
    assert mistral.status_code == 503 and mistral.json()["object"] == "error"
    add_fault(http, match={"provider": "groq"}, status=429)
    groq = post(http, "groq/chat/completions", chat("m"), KEYS["groq"])
    assert groq.status_code == 429 and groq.json()["error"]["code"] == "rate_limit_exceeded"


def test_config_shows_new_slugs_masked(http: httpx.Client) -> None:
    """The config endpoint lists the new providers' keys, masked."""
    shown = http.get("/__emulator/config").json()["providerKeys"]
    assert set(shown) == set(KEYS)
    assert all(value.endswith("***") for value in shown.values())
    assert all(key not in http.get("/__emulator/config").text for key in KEYS.values())
