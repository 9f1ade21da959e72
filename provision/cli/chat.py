"""`provision chat`: talk to a gateway (local or deployed) like any OpenAI client would."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from typing import Any, TextIO

import httpx

from provision.cli.api_errors import error_text
from provision.errors import ProvisionError

DEFAULT_BASE_URL = "http://127.0.0.1:8787/v1"
TIMEOUT = httpx.Timeout(120.0, connect=10.0)


class ChatError(ProvisionError):
    """The gateway answered with an error (already in OpenAI's shape)."""


def stream_deltas(lines: Iterator[str]) -> Iterator[str]:
    """Text deltas from an OpenAI SSE stream (`data: {...}` lines, ending with [DONE])."""
    for line in lines:
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            return
        chunk = json.loads(data)
        for choice in chunk.get("choices", []):
            text = (choice.get("delta") or {}).get("content")
            if text:
                yield text


class ChatSession:
    def __init__(self, client: httpx.Client, base_url: str, model: str | None, stream: bool):
        self.client = client
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.stream = stream
        self.messages: list[dict[str, Any]] = []

    def ask(self, text: str, out: TextIO) -> str:
        self.messages.append({"role": "user", "content": text})
        body: dict[str, Any] = {"messages": self.messages, "stream": self.stream}
        if self.model:
            body["model"] = self.model
        reply = self._stream(body, out) if self.stream else self._complete(body, out)
        self.messages.append({"role": "assistant", "content": reply})
        return reply

    def _complete(self, body: dict[str, Any], out: TextIO) -> str:
        response = self.client.post(self.url, json=body)
        if response.status_code != 200:
            self.messages.pop()
            raise ChatError(error_text(response))
        reply = response.json()["choices"][0]["message"]["content"] or ""
        out.write(reply + "\n")
        return reply

    def _stream(self, body: dict[str, Any], out: TextIO) -> str:
        parts = []
        with self.client.stream("POST", self.url, json=body) as response:
            if response.status_code != 200:
                response.read()
                self.messages.pop()
                raise ChatError(error_text(response))
            for delta in stream_deltas(response.iter_lines()):
                parts.append(delta)
                out.write(delta)
                out.flush()
        out.write("\n")
        return "".join(parts)


def run(args: Any) -> int:
    api_key = args.api_key or os.environ.get("GATEWAY_API_KEY")
    if not api_key:
        print("error: pass --api-key or set GATEWAY_API_KEY", file=sys.stderr)
        return 2
    headers = {"authorization": f"Bearer {api_key}"}
    with httpx.Client(headers=headers, timeout=TIMEOUT) as client:
        session = ChatSession(client, args.base_url, args.model, args.stream)
        if args.system:
            session.messages.append({"role": "system", "content": args.system})
        try:
            if args.message:
                session.ask(" ".join(args.message), sys.stdout)
                return 0
            return _interactive(session)
        except ChatError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        except httpx.HTTPError as exc:
            print(f"error: could not reach {args.base_url}: {exc}", file=sys.stderr)
            return 1


def _interactive(session: ChatSession) -> int:
    print(
        f"Chatting via {session.url} (model: {session.model or 'tenant default'}). "
        "Empty line or /exit quits."
    )
    while True:
        try:
            text = input("you> ").strip()
        except EOFError:
            return 0
        if not text or text in ("/exit", "/quit"):
            return 0
        sys.stdout.write("assistant> ")
        try:
            session.ask(text, sys.stdout)
        except ChatError as exc:
            print(f"error: {exc}")


def configure(parser: argparse.ArgumentParser) -> None:
    """The arguments of `provision chat` (its help line is in provision/cli/__init__.py)."""
    parser.add_argument("message", nargs="*", help="message to send; none starts interactive mode")
    parser.add_argument("--api-key", help="gateway key (default: $GATEWAY_API_KEY)")
    parser.add_argument(
        "--base-url",
        default=os.environ.get("GATEWAY_BASE_URL", DEFAULT_BASE_URL),
        help=f"OpenAI base URL of the gateway (default: {DEFAULT_BASE_URL})",
    )
    parser.add_argument("--model", help="model or alias (default: the key's default model)")
    parser.add_argument(
        "--stream", action="store_true", help="stream the answer as it is generated"
    )
    parser.add_argument("--system", help="system prompt")
    parser.set_defaults(handler=run)
