"""A local webhook receiver for the alert tests (budget alerts, spend-rate breakers): every POST
kept with its headers and parsed body."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from provision.local.runtime import LocalGateway
from tests.support import run_cli


class Receiver:
    """A webhook receiver: every POST kept; answers 500 to the first `fail_first[user]` posts."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.fail_first: dict[str, int] = {}
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"])).decode()
                event = json.loads(body)
                with receiver.lock:
                    receiver.received.append(
                        {"headers": dict(self.headers), "body": body, "event": event}
                    )
                    who = event.get("userId") or event["orgId"]
                    failing = receiver.fail_first.get(who, 0) > 0
                    if failing:
                        receiver.fail_first[who] -= 1
                self.send_response(500 if failing else 204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self, **match: Any) -> list[dict[str, Any]]:
        with self.lock:
            return [
                r for r in self.received if all(r["event"].get(k) == v for k, v in match.items())
            ]

    def close(self) -> None:
        self.server.shutdown()


def webhook_stack(fixture: Path) -> tuple[Any, Any]:
    """A module's `receiver` and `gateway` fixtures: `fixture` (a stack whose alerts.webhookUrl
    is http://127.0.0.1:9/...) run with its webhook pointed at the module's receiver."""

    @pytest.fixture(scope="module")
    def receiver() -> Any:
        running = Receiver()
        yield running
        running.close()

    @pytest.fixture(scope="module")
    def gateway(receiver: Receiver, tmp_path_factory: pytest.TempPathFactory) -> Any:
        stack = tmp_path_factory.mktemp("webhook") / fixture.name
        port = f"http://127.0.0.1:{receiver.port}/"
        stack.write_text(fixture.read_text().replace("http://127.0.0.1:9/", port))
        with LocalGateway(stack, test_hooks=True) as running:
            yield running

    return receiver, gateway


def alerts_from_a_shell(gateway: LocalGateway, org: str) -> list[str]:
    """`provision admin alerts --org ORG` against the gateway, as an admin runs it: its lines."""
    shown = run_cli(
        "admin",
        "alerts",
        "--org",
        org,
        "--base-url",
        gateway.worker_url,
        "--admin-key",
        gateway.secrets.admin_api_key,
    )
    assert shown.returncode == 0, shown.stderr
    return shown.stdout.splitlines()
