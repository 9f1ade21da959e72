"""Renderer: one bundled ES module per stack, identical for local runs and deploys."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import provision.stack.render as render
from provision.stack import contract
from provision.stack.config import StackConfig, load_stack_file, resolve_stack
from provision.stack.render import (
    GENERATED_DIR,
    TEMPLATE_DIR,
    RenderError,
    WorkerBundle,
    render_worker,
)

STACKS = ["dev", "example"]
NODE = shutil.which("node")

# Only a test render may contain these: the fault header and the test-only routes.
TEST_ONLY_MARKERS = ("x-test-fault", "/__test/")


def config_of(stack: str) -> StackConfig:
    return load_stack_file(resolve_stack(stack))


def export_value(source: str, name: str) -> object:
    """The JSON value of `export const NAME: T = <value>;` in a generated module."""
    match = re.search(rf"^export const {name}(?::[^=]+)? = (.*);$", source, re.M)
    assert match, f"no export {name}"
    return json.loads(match.group(1))


def node_check(path: Path) -> tuple[int, str]:
    assert NODE, "node must be on PATH"
    result = subprocess.run(
        [NODE, "--check", str(path)], capture_output=True, text=True, timeout=60
    )
    return result.returncode, result.stderr


@pytest.mark.parametrize("stack", STACKS)
def test_render_is_deterministic(stack: str) -> None:
    """Rendering the same stack twice gives the same bundle, byte for byte (cache aside)."""
    first = render_worker(config_of(stack))
    render._bundle.cache_clear()  # build again for real
    second = render_worker(config_of(stack))
    assert first.modules == second.modules
    assert first.sha256 == second.sha256


@pytest.mark.parametrize("stack", STACKS)
def test_the_worker_is_one_bundled_module(stack: str) -> None:
    """esbuild bundles worker/src and the generated modules into index.js alone: the
    Durable Object class is exported, Cloudflare's runtime modules stay imports."""
    bundle = render_worker(config_of(stack))
    assert list(bundle.modules) == ["index.js"] and bundle.extra_modules == {}
    code = bundle.modules["index.js"]
    assert re.search(rf"^export \{{[^}}]*\b{contract.LEDGER_CLASS}\b[^}}]*\}}", code, re.M)
    assert re.search(r"^export \{[^}]*\bas default\b", code, re.M)
    imports = re.findall(r"""^import .* from ["']([^"']+)["'];$""", code, re.M)
    assert imports and all(i.startswith("cloudflare:") for i in imports), imports


@pytest.mark.parametrize("stack", STACKS)
def test_settings_module_carries_the_stack_routing(stack: str) -> None:
    """The generated settings export the stack's models, default, aliases, limits, prices and
    name, and the bundle carries those values."""
    config = config_of(stack)
    bundle = render_worker(config)
    settings = bundle.generated["settings"]
    assert export_value(settings, "MODELS") == config.routing.catalog
    assert export_value(settings, "ALIASES") == config.routing.aliases
    assert export_value(settings, "DEFAULT_MODEL") == config.routing.defaultModel
    assert export_value(settings, "UPSTREAM_TIMEOUT_MS") == config.routing.upstreamTimeoutMs
    assert export_value(settings, "MAX_OUTPUT_TOKENS") == config.routing.maxOutputTokens
    assert export_value(settings, "MAX_CONTEXT_TOKENS") == config.routing.maxContextTokens
    assert export_value(settings, "EMBEDDING_MODELS") == config.routing.embeddingModels
    assert set(export_value(settings, "PRICES")) == set(config.routing.catalog)
    assert export_value(settings, "WORKER_NAME") == config.workerName
    assert export_value(settings, "WORKER_VERSION") == render.worker_version()
    code = bundle.modules["index.js"]
    assert json.dumps(config.routing.catalog) in code
    assert json.dumps(config.workerName) in code


def test_the_contract_module_is_provision_contract() -> None:
    """Every shared fact the Worker reads (patterns, enums, bindings, KV layout) is rendered
    from provision/stack/contract.py, value for value, and the patterns mean the same in both."""
    source = render_worker(config_of("dev")).generated["contract"]
    for name, value in contract.template_values().items():
        rendered = re.search(rf"^export const {name} = (.*?)(?: as const)?;$", source, re.M)
        assert rendered, f"contract module has no {name}"
        expected = list(value) if isinstance(value, tuple) else value
        assert json.loads(rendered.group(1)) == expected, name
    script = (
        "const p = " + json.dumps(contract.KEY_PATTERN) + "; const r = new RegExp(p);"
        "console.log(JSON.stringify([r.test('gw_live_' + 'a'.repeat(40)), r.test('gw_live_x'),"
        " r.test('sk-' + 'a'.repeat(40))]))"
    )
    out = subprocess.run([NODE or "node", "-e", script], capture_output=True, text=True, check=True)
    python = re.compile(contract.KEY_PATTERN)
    expected_matches = [
        bool(python.match(k)) for k in ("gw_live_" + "a" * 40, "gw_live_x", "sk-" + "a" * 40)
    ]
    assert json.loads(out.stdout) == expected_matches == [True, False, False]


@pytest.mark.parametrize("stack", STACKS)
def test_test_hooks_are_not_in_the_production_render(stack: str) -> None:
    """Only a test render bundles the fault switch and test routes; production has neither."""
    production = render_worker(config_of(stack))
    testing = render_worker(config_of(stack), test_hooks=True)
    shipped = production.modules["index.js"]
    for marker in TEST_ONLY_MARKERS:
        assert marker not in shipped, marker
        assert marker in testing.modules["index.js"], marker
    assert production.generated == testing.generated
    assert production.sha256 != testing.sha256


@pytest.mark.parametrize("stack", STACKS)
def test_no_template_syntax_left_in_output(stack: str) -> None:
    """No Jinja markers survive in a generated module."""
    for name, source in render_worker(config_of(stack)).generated.items():
        for marker in ("{{", "{%", "{#"):  # JSON never opens with these; it may close "}}"
            assert marker not in source, f"{marker!r} left in {name}"


def test_bundle_hash_follows_every_module() -> None:
    """WorkerBundle.sha256 changes when any module's content or name changes."""
    bundle = render_worker(config_of("dev"))
    same = WorkerBundle(modules=dict(bundle.modules))
    assert same.sha256 == bundle.sha256
    edited = {"index.js": bundle.modules["index.js"] + "\n"}
    assert WorkerBundle(modules=edited).sha256 != bundle.sha256
    renamed = {"worker.js": bundle.modules["index.js"]}
    assert WorkerBundle(modules=renamed).sha256 != bundle.sha256


def test_stack_routing_changes_the_bundle() -> None:
    """Stacks with different routing render different settings and bundle hashes."""
    dev, example = render_worker(config_of("dev")), render_worker(config_of("example"))
    assert dev.generated["settings"] != example.generated["settings"]
    assert dev.sha256 != example.sha256


@pytest.mark.parametrize("test_hooks", [False, True])
@pytest.mark.parametrize("stack", STACKS)
def test_the_bundle_is_valid_javascript(tmp_path: Path, stack: str, test_hooks: bool) -> None:
    """`node --check` accepts the bundle as an ES module."""
    path = tmp_path / "index.mjs"
    path.write_text(render_worker(config_of(stack), test_hooks=test_hooks).modules["index.js"])
    assert node_check(path) == (0, "")


def test_a_template_that_renders_invalid_typescript_fails_the_build(tmp_path: Path, monkeypatch):
    """A template mistake (a value without `tojson`) is a build error naming the module."""
    templates = tmp_path / "templates"
    shutil.copytree(TEMPLATE_DIR, templates)
    template = templates / "settings.ts.j2"
    text = template.read_text(encoding="utf-8")
    assert "worker_name | tojson" in text
    # without tojson the name is pasted as code: `llm-gateway-dev worker` is not TypeScript
    template.write_text(text.replace("worker_name | tojson", "worker_name ~ ' worker'"))
    monkeypatch.setattr(render, "TEMPLATE_DIR", templates)
    with pytest.raises(RenderError, match="settings"):
        render_worker(config_of("dev"))


def test_generated_modules_on_disk_are_the_dev_stacks(tmp_path: Path) -> None:
    """`python -m provision.stack.render --write-generated` writes what the bundle is built from
    (for tsc and the unit tests), and rewrites nothing that is current."""
    config = config_of("dev")
    written = render.write_generated(config, tmp_path)
    assert {p.name for p in written} == {f"{n}.ts" for n in render.render_generated(config)}
    assert render.write_generated(config, tmp_path) == []
    for name, source in render.render_generated(config).items():
        assert (tmp_path / f"{name}.ts").read_text() == source
    # one source: the files in the tree are never committed
    ignored = (GENERATED_DIR.parent.parent.parent / ".gitignore").read_text().splitlines()
    assert "worker/src/generated/" in ignored
