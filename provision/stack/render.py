"""Renderer: the stack's generated modules (Jinja) + the TypeScript sources → the Worker.

The templates under worker/templates/ render only what a stack decides (catalog, prices,
timeouts, the shared KV contract) into TypeScript modules; worker/build.mjs bundles them with
worker/src/ through esbuild (pinned in worker/package.json) into one ES module. Same input,
same bytes. The Pulumi component uploads exactly this bundle and the local runtime runs it.

    python -m provision.stack.render --stack dev --write-generated
        writes the dev stack's generated modules to worker/src/generated/ (gitignored), for
        the type checker, the unit tests and editors; bundles never read them.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from provision.errors import ProvisionError
from provision.stack.catalog import pattern_entries
from provision.stack.compiler import service_tiers, spend_rates, tool_prices
from provision.stack.config import StackConfig
from provision.stack.contract import CUSTOM_PREFIX, rate_tier_binding
from provision.stack.contract import template_values as contract_values
from provision.stack.prices import compile_price, context_windows, price_table

WORKER_DIR = Path(__file__).resolve().parents[2] / "worker"
SRC_DIR = WORKER_DIR / "src"
TEMPLATE_DIR = WORKER_DIR / "templates"
GENERATED_DIR = SRC_DIR / "generated"
BUILD_SCRIPT = WORKER_DIR / "build.mjs"
LOCKFILE = WORKER_DIR / "package-lock.json"
MAIN_MODULE = "index.js"
BUILD_TIMEOUT_S = 120


class RenderError(ProvisionError):
    """The Worker could not be built (a source or template error, or no Node.js)."""


@dataclass(frozen=True)
class WorkerBundle:
    """The Worker as uploaded: module name → source, and which module is the entry; plus the
    generated modules it was built from (for inspection, not uploaded separately)."""

    modules: dict[str, str]
    generated: dict[str, str] = field(default_factory=dict)
    main_module: str = MAIN_MODULE

    @property
    def sha256(self) -> str:
        digest = hashlib.sha256()
        for name in sorted(self.modules):
            digest.update(name.encode() + b"\0" + self.modules[name].encode() + b"\0")
        return digest.hexdigest()

    @property
    def extra_modules(self) -> dict[str, str]:
        return {n: s for n, s in self.modules.items() if n != self.main_module}


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )


def build_inputs() -> list[Path]:
    """Every file the bundle depends on besides the generated modules."""
    sources = [p for p in SRC_DIR.rglob("*.ts") if GENERATED_DIR not in p.parents]
    return sorted([*sources, *TEMPLATE_DIR.glob("*.j2"), BUILD_SCRIPT, LOCKFILE])


def worker_version() -> str:
    """Hash of the Worker's code (sources, templates, build, pinned packages), for /admin/health."""
    digest = hashlib.sha256()
    for path in build_inputs():
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def model_patterns(config: StackConfig) -> list[dict[str, Any]]:
    """The stack's model patterns with the catalog's entries under each (match rules, price)."""
    return [
        {
            "pattern": pattern,
            "prefix": pattern.removesuffix("*"),
            "entries": [
                {
                    "id": entry.id,
                    "match": entry.match,
                    "price": compile_price(entry.price),
                    "window": entry.window,
                }
                for entry in pattern_entries(pattern)
            ],
        }
        for pattern in config.routing.modelPatterns
    ]


def template_context(config: StackConfig) -> dict[str, Any]:
    return {
        "routing": config.routing.model_dump(mode="json"),
        "prices": price_table(config),
        "context_windows": context_windows(config),
        "tool_prices": tool_prices(config),
        "service_tiers": service_tiers(config),
        "rate_tiers": rate_tiers(config),
        "custom_providers": [f"{CUSTOM_PREFIX}{slug}" for slug in config.routing.customProviders],
        "model_patterns": model_patterns(config),
        # every org's browser origins: a preflight carries no key, so it is answered for these
        "cors_origins": sorted(
            {o for org in config.tenants.organizations for o in org.corsOrigins}
        ),
        "alerts": config.alerts.model_dump(mode="json") if config.alerts else None,
        "gateway_id": config.gatewayId,
        "worker_name": config.workerName,
        "worker_version": worker_version(),
        "contract": contract_values(),
    }


def rate_tiers(config: StackConfig) -> dict[str, dict[str, Any]]:
    """Tier name → its binding and limits, as the Worker reads them."""
    return {
        name: {
            "binding": rate_tier_binding(name),
            "limit": tier.requests,
            "period": tier.periodSeconds,
            "keyedBy": tier.keyedBy,
            "maxConcurrent": tier.maxConcurrent,
            # its spend-rate breakers, counted per user or per key as its requests are
            "spendRates": spend_rates(tier, tier.keyedBy),
        }
        for name, tier in sorted(config.rateTiers.items())
    }


def render_generated(config: StackConfig) -> dict[str, str]:
    """The stack's generated modules: name (as imported from ./generated/) → TypeScript."""
    env = _environment()
    context = template_context(config)
    return {
        path.name.removesuffix(".ts.j2"): env.get_template(path.name).render(context)
        for path in sorted(TEMPLATE_DIR.glob("*.ts.j2"))
    }


@functools.lru_cache(maxsize=16)
def _bundle(request: str) -> str:
    node = shutil.which("node")
    if node is None:
        raise RenderError("node is not on PATH; building the Worker needs Node.js 20 or newer")
    result = subprocess.run(
        [node, str(BUILD_SCRIPT)],
        input=request,
        capture_output=True,
        text=True,
        cwd=WORKER_DIR,
        timeout=BUILD_TIMEOUT_S,
    )
    if result.returncode != 0:
        raise RenderError(
            f"building the Worker failed (worker/build.mjs):\n{result.stderr.strip()}"
        )
    return result.stdout


def bundle(generated: dict[str, str], *, test_hooks: bool) -> str:
    """The one ES module esbuild makes of worker/src with these generated modules."""
    # The generated settings carry worker_version(), so the key changes with any source edit.
    request = json.dumps({"generated": generated, "testHooks": test_hooks}, sort_keys=True)
    return _bundle(request)


def render_worker(config: StackConfig, *, test_hooks: bool = False) -> WorkerBundle:
    """The Worker of a stack; `test_hooks` only for the local runtime's fault tests."""
    generated = render_generated(config)
    return WorkerBundle(
        modules={MAIN_MODULE: bundle(generated, test_hooks=test_hooks)}, generated=generated
    )


def write_generated(config: StackConfig, directory: Path = GENERATED_DIR) -> list[Path]:
    """The generated modules as files (for tsc, unit tests and editors); only changed ones."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, source in render_generated(config).items():
        path = directory / f"{name}.ts"
        if not path.exists() or path.read_text(encoding="utf-8") != source:
            path.write_text(source, encoding="utf-8")
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    from provision.stack.config import load_stack_file, resolve_stack

    parser = argparse.ArgumentParser(prog="python -m provision.stack.render")
    parser.add_argument("--stack", default="dev", help="stack name or path (default: dev)")
    parser.add_argument("--write-generated", action="store_true", help=f"write {GENERATED_DIR}")
    args = parser.parse_args(argv)
    config = load_stack_file(resolve_stack(args.stack))
    if args.write_generated:
        write_generated(config)
    else:
        print(render_worker(config).modules[MAIN_MODULE], end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
