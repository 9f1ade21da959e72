"""`provision dev` (what `make dev` runs): the gateway locally, with demo tenants, until Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from provision.errors import ConfigError, ProvisionError
from provision.local.runtime import LocalGateway
from provision.stack.config import resolve_stack
from provision.stack.render import RenderError, build_inputs

DEFAULT_PORT = 8787
WATCH_INTERVAL_S = 1.0


def banner(gateway: LocalGateway, stack: str) -> str:
    base = gateway.openai_base_url
    keys = gateway.demo_keys()
    assert gateway.config is not None
    model = next(iter(gateway.config.routing.aliases), gateway.config.routing.defaultModel)
    key = next(iter(keys.values()), "gw_live_...")
    lines = [
        f"LLM gateway (stack '{stack}') is running at {gateway.worker_url}",
        f"  OpenAI base URL:      {base}",
        f"  AI Gateway emulator:  {gateway.emulator_url}",
        f"  Admin API key:        {gateway.secrets.admin_api_key}   (new every run)",
        f"  Admin dashboard:      {gateway.worker_url}/admin/dashboard   (sign in with that key)",
        "",
        "Demo API keys (public, dev stack only):",
        *[f"  {user:<8} {plain}" for user, plain in keys.items()],
        "",
        "Try it with curl:",
        f"  curl {base}/chat/completions -H 'authorization: Bearer {key}' "
        f"-H 'content-type: application/json' "
        f'-d \'{{"model":"{model}","messages":[{{"role":"user","content":"Hello"}}]}}\'',
        "",
        "Or with the openai Python package:",
        "  from openai import OpenAI",
        f'  client = OpenAI(base_url="{base}", api_key="{key}")',
        f'  print(client.chat.completions.create(model="{model}", '
        'messages=[{"role": "user", "content": "Hello"}]).choices[0].message.content)',
        "",
        f"Or: .venv/bin/provision chat --api-key {key} --stream",
        f"Edits to {gateway.stack_path.name} (e.g. `provision keys create`) and to the Worker's"
        " code (worker/src, worker/templates) are applied live.",
        "Press Ctrl-C to stop.",
    ]
    return "\n".join(lines)


def _mtimes(gateway: LocalGateway) -> dict[Path, int]:
    """The stack file and every input of the Worker's build (sources, templates, lockfile)."""
    times = {}
    for path in [gateway.stack_path, *build_inputs()]:
        try:
            times[path] = path.stat().st_mtime_ns
        except FileNotFoundError:
            continue
    return times


def watch(gateway: LocalGateway, stopped: threading.Event) -> None:
    """Rebuild and reload whenever the stack file or the Worker's code changes (like a
    `pulumi up`: usage kept)."""
    seen = _mtimes(gateway)
    while not stopped.wait(WATCH_INTERVAL_S):
        now = _mtimes(gateway)
        if now == seen:
            continue
        changed = sorted(
            {p.name for p in now.keys() ^ seen.keys()}
            | {p.name for p in now if now[p] != seen.get(p)}
        )
        seen = now
        try:
            gateway.reload()
        except ConfigError as exc:
            print(f"not reloaded, the stack file is invalid:\n{exc}", flush=True)
            continue
        except RenderError as exc:
            print(f"not reloaded, the Worker does not build:\n{exc}", flush=True)
            continue
        print(f"reloaded ({', '.join(changed)})", flush=True)


def run(args: Any) -> int:
    stopped = threading.Event()
    # Ctrl-C and SIGTERM only ask to stop, so a second Ctrl-C cannot cut the cleanup short; set
    # explicitly because a shell may start background jobs with SIGINT ignored.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopped.set())
    try:
        with LocalGateway(resolve_stack(args.stack), host=args.host, port=args.port) as gateway:
            print(banner(gateway, args.stack), flush=True)
            watch(gateway, stopped)
            print("\nstopping…", flush=True)
    except ProvisionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def configure(parser: argparse.ArgumentParser) -> None:
    """The arguments of `provision dev` (its help line is in provision/cli/__init__.py)."""
    parser.add_argument(
        "--stack", default="dev", help="stack whose tenants to serve (default: dev)"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.set_defaults(handler=run)
