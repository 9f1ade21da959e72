"""The AI Gateway custom provider resource (provision/deploy/custom_provider.py) against a fake
of Cloudflare's API: what it sends on create, read and delete, that every change replaces it
(deleted first: the slug is unique), that a provider deleted outside Pulumi deletes cleanly, and
that the API token goes only in the Authorization header and never into an error."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from provision.deploy.custom_provider import CloudflareApiError, CustomProviderApi

ACCOUNT = "0123456789abcdef0123456789abcdef"
TOKEN = "cf-test-token-" + "x" * 20


class FakeApi:
    """Custom providers by id, and every request seen."""

    def __init__(self) -> None:
        self.providers: dict[str, dict[str, Any]] = {}
        self.seen: list[tuple[str, str, dict[str, Any] | None, str | None]] = []
        self.next_id = 1


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeApi]:
    state = FakeApi()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _handle(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            state.seen.append((self.command, self.path, body, self.headers.get("authorization")))
            prefix = f"/accounts/{ACCOUNT}/ai-gateway/custom-providers"
            if self.headers.get("authorization") != f"Bearer {TOKEN}":
                return self._answer(403, {"success": False, "errors": [{"message": "denied"}]})
            if self.command == "POST" and self.path == prefix:
                assert body is not None
                if any(p["slug"] == body["slug"] for p in state.providers.values()):
                    return self._answer(
                        400, {"success": False, "errors": [{"message": "slug taken"}]}
                    )
                provider_id = f"00000000-0000-4000-8000-{state.next_id:012d}"
                state.next_id += 1
                state.providers[provider_id] = {"id": provider_id, **body}
                return self._answer(200, {"success": True, "result": state.providers[provider_id]})
            provider_id = self.path.removeprefix(prefix + "/")
            if provider_id not in state.providers:
                return self._answer(404, {"success": False, "errors": [{"message": "not found"}]})
            if self.command == "GET":
                return self._answer(200, {"success": True, "result": state.providers[provider_id]})
            if self.command == "DELETE":
                return self._answer(
                    200, {"success": True, "result": state.providers.pop(provider_id)}
                )
            return self._answer(405, {"success": False})

        do_GET = do_POST = do_DELETE = _handle

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    monkeypatch.setenv("CLOUDFLARE_API_BASE_URL", f"http://127.0.0.1:{server.server_port}")
    yield state
    server.shutdown()


PROPS = {
    "account_id": ACCOUNT,
    "slug": "vllm",
    "name": "vLLM (team GPU)",
    "base_url": "https://vllm.internal.example/v1",
    "description": "declared in stacks/Pulumi.prod.yaml",
    "provider_id": None,
}


def test_create_read_delete(api: FakeApi) -> None:
    provider = CustomProviderApi()
    created = provider.create(dict(PROPS))
    assert created.id in api.providers
    method, path, body, auth = api.seen[-1]
    assert (method, path) == ("POST", f"/accounts/{ACCOUNT}/ai-gateway/custom-providers")
    assert body == {
        "name": "vLLM (team GPU)",
        "slug": "vllm",
        "base_url": "https://vllm.internal.example/v1",
        "description": "declared in stacks/Pulumi.prod.yaml",
        "enable": True,
    }
    assert auth == f"Bearer {TOKEN}"
    assert created.outs is not None and created.outs["provider_id"] == created.id
    api.providers[str(created.id)]["base_url"] = "https://changed.example/v1"  # edited by hand
    read = provider.read(str(created.id), created.outs)
    assert read.outs is not None and read.outs["base_url"] == "https://changed.example/v1"
    provider.delete(str(created.id), created.outs)
    assert api.providers == {}
    provider.delete(str(created.id), created.outs)  # already gone: a clean delete


def test_any_change_replaces_it_deleting_first() -> None:
    provider = CustomProviderApi()
    same = provider.diff("id", dict(PROPS), dict(PROPS))
    assert same.changes is False and same.replaces == []
    moved = provider.diff("id", dict(PROPS), {**PROPS, "base_url": "https://other.example/v1"})
    assert moved.changes is True and moved.replaces == ["base_url"]
    assert moved.delete_before_replace is True, "the slug is unique in the account"


def test_refusals_name_the_call_and_never_the_token(
    api: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = CustomProviderApi()
    provider.create(dict(PROPS))
    with pytest.raises(CloudflareApiError) as raised:
        provider.create(dict(PROPS))
    assert "HTTP 400" in str(raised.value) and "slug taken" in str(raised.value)
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", "wrong-" + TOKEN)
    with pytest.raises(CloudflareApiError) as denied:
        provider.create({**PROPS, "slug": "ollama"})
    assert "HTTP 403" in str(denied.value) and TOKEN not in str(denied.value)
    monkeypatch.delenv("CLOUDFLARE_API_TOKEN")
    with pytest.raises(CloudflareApiError, match="CLOUDFLARE_API_TOKEN is not set"):
        provider.create({**PROPS, "slug": "tgi"})
