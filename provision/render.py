"""Renderer: Jinja templates + plain JS modules → the Worker's ES modules.

Pure: reads only the files under worker/. The Pulumi component uploads exactly these
modules and the local runtime runs exactly these modules in workerd.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import jinja2

from provision.compiler import price_table
from provision.config import StackConfig
from provision.contract import template_values as contract_values

WORKER_DIR = Path(__file__).resolve().parent.parent / "worker"
SRC_DIR = WORKER_DIR / "src"
TEMPLATE_DIR = WORKER_DIR / "templates"
MAIN_MODULE = "index.js"


@dataclass(frozen=True)
class WorkerBundle:
    """The Worker as uploaded: module name → source, plus which module is the entry."""

    modules: dict[str, str]
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


def worker_version() -> str:
    """Hash of the Worker's own code (plain modules and templates), for /admin/health."""
    digest = hashlib.sha256()
    for path in sorted([*SRC_DIR.glob("*.js"), *TEMPLATE_DIR.glob("*.j2")]):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def template_context(config: StackConfig, *, test_hooks: bool) -> dict:
    return {
        "routing": config.routing.model_dump(mode="json"),
        "prices": price_table(config),
        "gateway_id": config.gatewayId,
        "worker_name": config.workerName,
        "worker_version": worker_version(),
        "test_hooks": test_hooks,
        "contract": contract_values(),
    }


def render_worker(config: StackConfig, *, test_hooks: bool = False) -> WorkerBundle:
    """All modules of the Worker; `test_hooks` only for the local runtime's fault tests."""
    modules = {path.name: path.read_text(encoding="utf-8") for path in sorted(SRC_DIR.glob("*.js"))}
    env = _environment()
    context = template_context(config, test_hooks=test_hooks)
    for path in sorted(TEMPLATE_DIR.glob("*.j2")):
        name = path.name.removesuffix(".j2")
        modules[name] = env.get_template(path.name).render(context)
    if MAIN_MODULE not in modules:
        raise FileNotFoundError(f"worker entry module {MAIN_MODULE} missing in {SRC_DIR}")
    return WorkerBundle(modules=dict(sorted(modules.items())))
