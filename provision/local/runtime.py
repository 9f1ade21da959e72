"""The local runtime: the stack's Worker running for real in workerd, behind the emulator.

`LocalGateway` renders the modules and compiles the KV records with the same functions the
Pulumi component uses, builds the same bindings, and hands them to `worker/local/runtime.ts`
(miniflare + the AI Gateway emulator; node runs the TypeScript through tsx). Used by `make dev`,
the end-to-end tests and `make bench`.
"""

from __future__ import annotations

import json
import os
import secrets
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provision.deploy.bindings import COMPATIBILITY_FLAGS, catalog_providers, script_bindings
from provision.errors import ProvisionError
from provision.stack.compiler import compile_records
from provision.stack.config import StackConfig, load_stack_file
from provision.stack.contract import (
    AWS_BEDROCK,
    CUSTOM_PREFIX,
    KV_BINDING,
    MANAGED_PREFIXES,
    WORKERS_AI,
)
from provision.stack.keys import demo_key, hash_key
from provision.stack.render import WORKER_DIR, render_worker

RUNTIME_SCRIPT = WORKER_DIR / "local" / "runtime.ts"
# node runs the TypeScript through tsx's ESM loader, resolved from the cwd (WORKER_DIR). tsx/esm,
# not plain tsx: the local modules are all ESM, and skipping tsx's CommonJS hook saves ~80 ms of
# startup (miniflare requires some 130 CommonJS files).
NODE_TSX_ARGS = ("--import", "tsx/esm")
START_TIMEOUT_S = 60.0
RELOAD_TIMEOUT_S = 60.0
LOCAL_NAMESPACE_ID = "gateway-kv"


class LocalRuntimeError(ProvisionError):
    """The local runtime could not start, reload or stop cleanly."""


@dataclass
class LocalSecrets:
    """Per-run secrets: fresh random values every start, never written anywhere durable."""

    admin_api_key: str = field(default_factory=lambda: "adm_" + secrets.token_urlsafe(24))
    ai_gateway_token: str = field(default_factory=lambda: "aig_" + secrets.token_urlsafe(24))
    provider_api_keys: dict[str, str] = field(default_factory=dict)
    # providers whose key is stored on the (emulated) gateway: no key in the Worker's secrets
    byok_providers: frozenset[str] = frozenset()
    # signs budget alert webhooks (a test's receiver checks the signature with it)
    alert_webhook_secret: str = field(default_factory=lambda: "whsec_" + secrets.token_urlsafe(24))

    def for_providers(self, providers: list[str]) -> LocalSecrets:
        for provider in providers:
            if provider == WORKERS_AI or provider in self.byok_providers:
                continue  # the AI binding, or a key stored on the gateway: none in the Worker
            self.provider_api_keys.setdefault(provider, _local_key(provider))
        return self


def _local_key(provider: str) -> str:
    """A fresh credential in the provider's form: AWS keys as JSON for Bedrock (the Worker signs
    with them, the emulator verifies the signature), an API key for the others."""
    if provider == AWS_BEDROCK:
        return json.dumps(
            {
                "accessKeyId": "AKIALOCAL" + secrets.token_hex(6).upper(),
                "secretAccessKey": secrets.token_urlsafe(30),
            }
        )
    return f"sk-local-{provider}-" + secrets.token_hex(8)


def emulator_config(config: StackConfig, local: LocalSecrets) -> dict[str, Any]:
    """The emulated AI Gateway mirrors the stack's gateway settings."""
    settings = config.aiGateway
    return {
        "accountId": config.accountId,
        "gateways": {
            config.gatewayId: {
                "authentication": settings.authentication,
                "token": local.ai_gateway_token,
                "cacheTtl": settings.cacheTtl,
                "collectLogs": settings.collectLogs,
                "rateLimit": settings.rateLimit.model_dump(),
                "byokProviders": sorted(local.byok_providers),
            }
        },
        "providerKeys": dict(local.provider_api_keys),
        # what `pulumi up` creates on the account from routing.customProviders
        "customProviders": [f"{CUSTOM_PREFIX}{slug}" for slug in config.routing.customProviders],
    }


def runtime_spec(
    config: StackConfig,
    local: LocalSecrets,
    *,
    host: str,
    port: int,
    emulator_port: int | None,
    test_hooks: bool,
    persist_dir: str | None,
) -> dict[str, Any]:
    """Everything runtime.ts needs; modules, records and bindings exactly as Pulumi deploys."""
    bundle = render_worker(config, test_hooks=test_hooks)
    bindings: dict[str, str] = {}
    durable_objects: dict[str, Any] = {}
    ai_binding: str | None = None
    ratelimits: dict[str, Any] = {}
    analytics: dict[str, str] | None = None
    for binding in script_bindings(
        config,
        LOCAL_NAMESPACE_ID,
        local.admin_api_key,
        local.ai_gateway_token,
        local.provider_api_keys,
        local.alert_webhook_secret,
    ):
        if binding["type"] in ("plain_text", "secret_text"):
            bindings[binding["name"]] = binding["text"]
        elif binding["type"] == "ai":
            ai_binding = binding["name"]
        elif binding["type"] == "analytics_engine":
            # worker/local/analytics-engine.js: checks each point as Cloudflare does, keeps them
            analytics = {"binding": binding["name"], "dataset": binding["dataset"]}
        elif binding["type"] == "ratelimit":
            # worker/local/rate-limit.js counts them in the isolate, as the deployed binding does
            ratelimits[binding["name"]] = {
                "namespace_id": binding["namespace_id"],
                "simple": binding["simple"],
            }
        elif binding["type"] == "durable_object_namespace":
            durable_objects[binding["name"]] = {
                "className": binding["class_name"],
                "useSQLite": True,
            }
    return {
        "host": host,
        "port": port,
        "modules": bundle.modules,
        "mainModule": bundle.main_module,
        "compatibilityDate": config.compatibilityDate.isoformat(),
        "compatibilityFlags": COMPATIBILITY_FLAGS,
        "kvBinding": KV_BINDING,
        "kvRecords": compile_records(config),
        "managedPrefixes": list(MANAGED_PREFIXES),  # what a reload may delete (Pulumi-owned)
        "bindings": bindings,
        "durableObjects": durable_objects,
        # the `ai` binding, served by the emulator through miniflare's remote proxy
        "aiBinding": ai_binding,
        "ratelimits": ratelimits,
        "analytics": analytics,
        "persistDir": persist_dir,
        # test runs may fire the cron handler at /cdn-cgi/handler/scheduled (local only)
        "triggerHandlers": test_hooks,
        "emulator": None
        if emulator_port is None
        else {"port": emulator_port, "config": emulator_config(config, local)},
    }


def node_binary() -> str:
    node = shutil.which("node")
    if not node:
        raise LocalRuntimeError("node is not on PATH; the local runtime needs Node.js 20 or newer")
    return node


class LocalGateway:
    """Start with `with LocalGateway(path) as gw:`; `gw.worker_url` is the OpenAI base host."""

    def __init__(
        self,
        stack_path: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        emulator: bool = True,
        emulator_port: int = 0,
        test_hooks: bool = False,
        local_secrets: LocalSecrets | None = None,
        log_path: Path | None = None,
    ):
        self.stack_path = Path(stack_path)
        # the runtime's stderr (the Worker's log lines): inherited, or appended to this file
        self.log_path = Path(log_path) if log_path is not None else None
        self.host = host
        self.port = port
        self.emulator_port = emulator_port if emulator else None
        self.test_hooks = test_hooks
        self.secrets = local_secrets or LocalSecrets()
        self.config: StackConfig | None = None
        self.worker_url = ""
        self.emulator_url: str | None = None
        self._process: subprocess.Popen[str] | None = None
        self._workdir: Path | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> LocalGateway:
        self.config = load_stack_file(self.stack_path)
        self.secrets.for_providers(catalog_providers(self.config))
        self._workdir = Path(tempfile.mkdtemp(prefix="llm-gateway-local-"))
        os.chmod(self._workdir, 0o700)  # the spec holds this run's secrets
        self._write_spec()
        log = open(self.log_path, "ab") if self.log_path is not None else None  # noqa: SIM115
        self._process = subprocess.Popen(
            [node_binary(), *NODE_TSX_ARGS, str(RUNTIME_SCRIPT), str(self._spec_path)],
            cwd=WORKER_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            start_new_session=True,  # our own process group: stop() ends node AND workerd
        )
        if log is not None:
            log.close()  # the child holds its own descriptor
        ready = self._read_status(START_TIMEOUT_S, lambda msg: "workerUrl" in msg)
        self.worker_url = ready["workerUrl"]
        self.emulator_url = ready.get("emulatorUrl")
        return self

    @property
    def runtime_pid(self) -> int | None:
        """The local runtime's node process (workerd runs as its child), while it runs."""
        return self._process.pid if self._process else None

    def reload(self) -> None:
        """Re-read the stack file and apply it: new records and modules, same ports and usage."""
        if not self._process:
            raise LocalRuntimeError("the local runtime is not running")
        self.config = load_stack_file(self.stack_path)
        self.secrets.for_providers(catalog_providers(self.config))
        self._write_spec()
        self._process.send_signal(signal.SIGHUP)
        status = self._read_status(RELOAD_TIMEOUT_S, lambda msg: "reloaded" in msg)
        if not status["reloaded"]:
            raise LocalRuntimeError(f"reload failed: {status.get('error')}")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=10)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
            finally:
                for stream in (process.stdin, process.stdout):
                    if stream:
                        stream.close()
            # workerd is node's child in the same group; make sure nothing outlives us.
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __enter__(self) -> LocalGateway:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ helpers

    def logs(self) -> str:
        """What the runtime wrote to its log file (log_path) so far."""
        if self.log_path is None:
            raise LocalRuntimeError("this runtime's logs go to the parent's stderr (no log_path)")
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    @property
    def openai_base_url(self) -> str:
        return f"{self.worker_url}/v1"

    def demo_keys(self) -> dict[str, str]:
        """user id → plain demo key, for the stack's keys that are public demo keys."""
        assert self.config is not None
        keys: dict[str, str] = {}
        for user in self.config.tenants.users:
            for key in user.keys:
                plain = demo_key(key.id)
                if hash_key(plain) == key.sha256 and key.status == "active":
                    keys.setdefault(user.id, plain)
        return keys

    @property
    def _spec_path(self) -> Path:
        assert self._workdir is not None
        return self._workdir / "spec.json"

    def _write_spec(self) -> None:
        assert self.config is not None and self._workdir is not None
        spec = runtime_spec(
            self.config,
            self.secrets,
            host=self.host,
            port=self.port,
            emulator_port=self.emulator_port,
            test_hooks=self.test_hooks,
            persist_dir=str(self._workdir / "state"),
        )
        temp = self._spec_path.with_suffix(".tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(spec, handle)
        temp.replace(self._spec_path)  # atomic: a reload never reads half a spec

    def _read_status(
        self, timeout: float, wanted: Callable[[dict[str, Any]], bool]
    ) -> dict[str, Any]:
        assert self._process is not None and self._process.stdout is not None
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(self._process.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
                    break
                line = self._process.stdout.readline()
                if not line:
                    code = self._process.wait(timeout=5)
                    raise LocalRuntimeError(
                        f"the local runtime exited with code {code} (see its stderr)"
                    )
                try:
                    message = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(message, dict) and wanted(message):
                    return message
        raise LocalRuntimeError(f"the local runtime did not answer within {timeout:.0f} s")
