"""One measurement of a project tree's deploy, run in a fresh interpreter by tests/bench/deploy.py.

    python deploy_probe.py <tree root> <stack file> [--program]

Prints JSON: a digest of every compiled KV record and of the rendered script (what decides
which resources a change touches) and, with --program, the Pulumi program's run under mocks:
resources by type, evaluation time (the provider import excluded) and peak memory. It uses
only what every version of the project has (compile_records, render_worker, __main__.py), so
the same probe measures this checkout and an older one.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import resource
import runpy
import sys
import time
from pathlib import Path
from typing import Any

import yaml

PROJECT = "llm-gateway"
SCRIPTS_INVOKE = "cloudflare:index/getWorkersScripts:getWorkersScripts"


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class _CliLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """The Pulumi CLI's reading of a stack file: timestamps stay text."""


_CliLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def run_program(root: Path, stack: Path) -> dict[str, Any]:
    started = time.perf_counter()
    import pulumi
    import pulumi_cloudflare  # noqa: F401  (the import is timed apart)
    from pulumi.runtime import settings as runtime_settings

    imported = time.perf_counter()

    class Mocks(pulumi.runtime.Mocks):
        def __init__(self) -> None:
            self.created: list[str] = []

        def new_resource(self, args: Any) -> tuple[str, dict]:
            self.created.append(args.typ)
            return f"{args.name}-id", dict(args.inputs)

        def call(self, args: Any) -> dict:
            return {"results": []} if args.token == SCRIPTS_INVOKE else {}

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    mocks = Mocks()
    runtime_settings.ROOT.set(None)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack.stem.split(".", 1)[1])
    document = yaml.load(stack.read_text(encoding="utf-8"), _CliLoader)
    config = {
        k: v if isinstance(v, str) else json.dumps(v, default=str)
        for k, v in document["config"].items()
    }
    secrets = {f"{PROJECT}:adminApiKey": "a", f"{PROJECT}:aiGatewayToken": "t"}
    pulumi.runtime.set_all_config({**config, **secrets}, secret_keys=sorted(secrets))
    configured = time.perf_counter()  # reading YAML is the CLI's work, not the program's

    @pulumi.runtime.test
    def program() -> Any:
        gateway = runpy.run_path(str(root / "__main__.py"))["gateway"]
        children = [gateway.ai_gateway, gateway.namespace, *gateway.entries, gateway.script]
        children += [gateway.cron, gateway.subdomain]
        children += [gateway.custom_domain] if gateway.custom_domain is not None else []
        return pulumi.Output.all(*[c.urn for c in children])

    program()
    done = time.perf_counter()
    by_type: dict[str, int] = {}
    for typ in mocks.created:
        by_type[typ.rsplit(":", 1)[-1]] = by_type.get(typ.rsplit(":", 1)[-1], 0) + 1
    by_type.pop("Gateway", None)
    return {
        "resources": sum(by_type.values()),
        "byType": by_type,
        "importSeconds": imported - started,
        "evalSeconds": done - configured,
        "peakRssMb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    root, stack = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()
    sys.path.insert(0, str(root))
    from provision.stack.compiler import compile_records
    from provision.stack.config import load_stack_file
    from provision.stack.render import render_worker

    config = load_stack_file(stack)
    out: dict[str, Any] = {
        "records": {k: digest(v) for k, v in compile_records(config).items()},
        "script": render_worker(config).sha256,
    }
    if "--program" in sys.argv[3:]:
        out["program"] = run_program(root, stack)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
