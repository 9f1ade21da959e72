"""The admin API's client, shared by the commands that read it (`provision admin`, `provision
report`): --base-url and --admin-key (or GATEWAY_ADMIN_URL and GATEWAY_ADMIN_KEY), one call at a
time, and every failure worded for a person as an AdminError.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import httpx

from provision.cli.api_errors import error_text
from provision.errors import ProvisionError

DEFAULT_BASE_URL = "http://127.0.0.1:8787"
TIMEOUT = httpx.Timeout(30.0, connect=10.0)


class AdminError(ProvisionError):
    """The admin API answered with an error or could not be reached, worded for a person."""

    exit_code = 1


class AdminUsageError(AdminError):
    """The command line cannot be sent as it is (no admin key, options that exclude each other)."""

    exit_code = 2


def call(client: httpx.Client, method: str, path: str, params: dict[str, str]) -> httpx.Response:
    """One admin API call; an error answer (other than a degraded health report) raises."""
    response = client.request(method, path, params=params)
    if response.status_code >= 400:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not (isinstance(body, dict) and "status" in body and "error" not in body):
            text = error_text(response)
            if response.status_code == 401:
                text += " (check --admin-key or GATEWAY_ADMIN_KEY)"
            raise AdminError(text)
    return response


def admin_key_of(args: argparse.Namespace) -> str:
    """--admin-key, else GATEWAY_ADMIN_KEY; neither is a usage error."""
    admin_key: str | None = args.admin_key or os.environ.get("GATEWAY_ADMIN_KEY")
    if not admin_key:
        raise AdminUsageError(
            "no admin key: pass --admin-key or set GATEWAY_ADMIN_KEY "
            "(`provision dev` prints the local one)"
        )
    return admin_key


def fetch(
    args: argparse.Namespace, method: str, path: str, params: dict[str, str]
) -> httpx.Response:
    """One call to the admin API at --base-url with the admin key; every failure an AdminError."""
    headers = {"authorization": f"Bearer {admin_key_of(args)}"}
    base_url = args.base_url.rstrip("/")
    try:
        with httpx.Client(base_url=base_url, headers=headers, timeout=TIMEOUT) as client:
            return call(client, method, path, params)
    except httpx.HTTPError as exc:
        raise AdminError(
            f"could not reach {base_url}: {exc} (is the gateway running, and is --base-url "
            "or GATEWAY_ADMIN_URL its URL?)"
        ) from exc


def json_body(response: httpx.Response) -> Any:
    """The answer's JSON; anything else means --base-url is not a gateway."""
    try:
        return response.json()
    except ValueError as exc:
        raise AdminError(
            f"{response.request.url} answered HTTP {response.status_code} without the admin "
            "API's JSON: is --base-url the gateway's URL (without /v1)?"
        ) from exc


def connection_options(parser: argparse.ArgumentParser, *, defaults: bool = True) -> None:
    """--base-url and --admin-key (with GATEWAY_ADMIN_URL and GATEWAY_ADMIN_KEY), for `fetch`."""

    def default(value: Any) -> Any:
        return value if defaults else argparse.SUPPRESS

    parser.add_argument(
        "--base-url",
        default=default(os.environ.get("GATEWAY_ADMIN_URL", DEFAULT_BASE_URL)),
        help=f"the gateway's URL, without /v1 (default: $GATEWAY_ADMIN_URL or {DEFAULT_BASE_URL})",
    )
    parser.add_argument(
        "--admin-key",
        default=default(None),
        help="the deployment's ADMIN_API_KEY (default: $GATEWAY_ADMIN_KEY)",
    )
