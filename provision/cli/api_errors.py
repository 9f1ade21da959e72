"""How the CLI words an error answer from the gateway (always OpenAI's error shape)."""

from __future__ import annotations

import httpx


def error_text(response: httpx.Response) -> str:
    """`HTTP 404 [user_not_found]: No user with id 'x'.` (raw text if the body is not ours)."""
    try:
        error = response.json()["error"]
        code = f" [{error['code']}]" if error.get("code") else ""
        return f"HTTP {response.status_code}{code}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}: {response.text[:300]}"
