"""AI Gateway custom providers (`custom-{slug}`), which pulumi-cloudflare 6.23.1 has no resource
for: a Pulumi dynamic resource on Cloudflare's API (POST, GET and DELETE
/accounts/{account}/ai-gateway/custom-providers[/{id}]), with the deploy's CLOUDFLARE_API_TOKEN.

Any change is a replacement, deleted first: the slug is unique in the account and is what the
Worker's path names, and the API's update verb is not documented where its create and delete
are. A provider already deleted outside Pulumi deletes cleanly (a 404 is success).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider

API_BASE = "https://api.cloudflare.com/client/v4"
# what the stack decides; a change to any of them replaces the provider
FIELDS = ("account_id", "slug", "name", "base_url", "description")


class CloudflareApiError(Exception):
    """Cloudflare's API refused a custom provider call (its own errors, never the token)."""


def _call(method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    token = os.environ.get("CLOUDFLARE_API_TOKEN", "")
    if not token:
        raise CloudflareApiError(
            "CLOUDFLARE_API_TOKEN is not set: AI Gateway custom providers need it"
        )
    base = os.environ.get("CLOUDFLARE_API_BASE_URL", API_BASE).rstrip("/")
    request = urllib.request.Request(
        f"{base}{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (https API)
            answer: dict[str, Any] = json.loads(response.read() or b"{}")
            return answer
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:500]
        raise CloudflareApiError(f"{method} {path}: HTTP {exc.code}: {detail}") from exc


def _path(account_id: str, provider_id: str | None = None) -> str:
    tail = "" if provider_id is None else f"/{provider_id}"
    return f"/accounts/{account_id}/ai-gateway/custom-providers{tail}"


class CustomProviderApi(ResourceProvider):
    """Create, read and delete one custom provider; every change replaces it."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        body = {
            "name": props["name"],
            "slug": props["slug"],
            "base_url": props["base_url"],
            "description": props.get("description") or "",
            "enable": True,
        }
        result = _call("POST", _path(props["account_id"]), body).get("result") or {}
        provider_id = result.get("id")
        if not isinstance(provider_id, str):
            raise CloudflareApiError(f"creating custom provider '{props['slug']}' returned no id")
        return CreateResult(id_=provider_id, outs={**props, "provider_id": provider_id})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        result = _call("GET", _path(props["account_id"], id_)).get("result") or {}
        live = {
            "slug": result.get("slug", props.get("slug")),
            "name": result.get("name", props.get("name")),
            "base_url": result.get("base_url", props.get("base_url")),
            "description": result.get("description", props.get("description")) or "",
        }
        return ReadResult(id_=id_, outs={**props, **live})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [field for field in FIELDS if (olds.get(field) or "") != (news.get(field) or "")]
        return DiffResult(
            changes=bool(changed), replaces=changed, stables=[], delete_before_replace=True
        )

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        try:
            _call("DELETE", _path(props["account_id"], id_))
        except CloudflareApiError as exc:
            if "HTTP 404" not in str(exc):
                raise


class AiGatewayCustomProvider(Resource):
    """One custom provider: AI Gateway forwards `custom-{slug}/…` to `{base_url}/…`."""

    provider_id: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        *,
        account_id: str,
        slug: str,
        name: str,
        base_url: str,
        description: str = "",
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = {
            "account_id": account_id,
            "slug": slug,
            "name": name,
            "base_url": base_url,
            "description": description,
            "provider_id": None,
        }
        super().__init__(CustomProviderApi(), resource_name, props, opts)
