"""Renderer: the Worker's ES modules, identical for local runs and deploys."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import provision.render as render
from provision.config import StackConfig, load_stack_file, stack_file
from provision.render import SRC_DIR, TEMPLATE_DIR, WorkerBundle, render_worker

STACKS = ["dev", "example"]
NODE = shutil.which("node")


# Only a test render may contain these: the fault header and the test-only routes.
TEST_ONLY_MARKERS = ("x-test-fault", "/__test/")


def rendered_names() -> set[str]:
    """Modules produced from templates (the rest are copied from worker/src)."""
    return {p.name.removesuffix(".j2") for p in TEMPLATE_DIR.glob("*.j2")}


def config_of(stack: str) -> StackConfig:
    return load_stack_file(stack_file(stack))


def export_value(source: str, name: str) -> object:
    """The JSON value of `export const NAME = <value>;` in a rendered module."""
    match = re.search(rf"^export const {name} = (.*);$", source, re.M)
    assert match, f"settings.js has no export {name}"
    return json.loads(match.group(1))


def write_modules(directory: Path, bundle: WorkerBundle) -> list[Path]:
    directory.mkdir()
    (directory / "package.json").write_text('{"type": "module"}')  # .js files are ES modules
    paths = []
    for name, source in bundle.modules.items():
        path = directory / name
        path.write_text(source, encoding="utf-8")
        paths.append(path)
    return paths


def node_check(*paths: Path) -> dict[str, tuple[int, str]]:
    """`node --check` on each file, concurrently: name → (exit code, stderr)."""
    assert NODE, "node must be on PATH"
    running = {
        p.name: subprocess.Popen(
            [NODE, "--check", str(p)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        for p in paths
    }
    results = {}
    for name, process in running.items():
        _, stderr = process.communicate(timeout=60)
        results[name] = (process.returncode, stderr)
    return results


@pytest.mark.parametrize("stack", STACKS)
def test_render_is_deterministic(stack: str) -> None:
    """Rendering the same stack twice gives the same modules, byte for byte."""
    first, second = render_worker(config_of(stack)), render_worker(config_of(stack))
    assert first.modules == second.modules
    assert first.sha256 == second.sha256
    assert list(first.modules) == sorted(first.modules)


@pytest.mark.parametrize("stack", STACKS)
def test_plain_modules_are_shipped_unchanged(stack: str) -> None:
    """Every worker/src/*.js module is uploaded exactly as written, plus the rendered templates."""
    bundle = render_worker(config_of(stack))
    sources = {p.name: p.read_text(encoding="utf-8") for p in SRC_DIR.glob("*.js")}
    templates = rendered_names()
    assert "settings.js" in templates
    assert set(bundle.modules) == set(sources) | templates
    for name, source in sources.items():
        assert bundle.modules[name] == source, name
    assert bundle.main_module == "index.js"
    assert set(bundle.extra_modules) == set(bundle.modules) - {"index.js"}


@pytest.mark.parametrize("stack", STACKS)
def test_settings_module_carries_the_stack_routing(stack: str) -> None:
    """settings.js exports the stack's models, default, aliases, limits, prices and name."""
    config = config_of(stack)
    settings = render_worker(config).modules["settings.js"]
    assert export_value(settings, "MODELS") == config.routing.models
    assert export_value(settings, "ALIASES") == config.routing.aliases
    assert export_value(settings, "UPSTREAM_TIMEOUT_MS") == config.routing.upstreamTimeoutMs
    assert export_value(settings, "MAX_OUTPUT_TOKENS") == config.routing.maxOutputTokens
    assert set(export_value(settings, "PRICES")) == set(config.routing.models)
    assert export_value(settings, "WORKER_NAME") == config.workerName
    assert export_value(settings, "WORKER_VERSION") == render.worker_version()


@pytest.mark.parametrize("stack", STACKS)
def test_test_hooks_are_off_in_the_production_render(stack: str) -> None:
    """The test switch is off unless asked for; no fault-injection code ships to production."""
    production = render_worker(config_of(stack))
    testing = render_worker(config_of(stack), test_hooks=True)
    assert export_value(production.modules["settings.js"], "TEST_HOOKS") is False
    assert export_value(testing.modules["settings.js"], "TEST_HOOKS") is True
    shipped = "".join(production.modules.values())
    assert "TEST_HOOKS = true" not in shipped
    for marker in TEST_ONLY_MARKERS:
        assert marker not in shipped, marker
        assert marker in "".join(testing.modules.values()), marker
    assert set(production.modules) == set(testing.modules)
    changed = {n for n in production.modules if production.modules[n] != testing.modules[n]}
    assert "settings.js" in changed and changed <= rendered_names()
    assert production.sha256 != testing.sha256


@pytest.mark.parametrize("stack", STACKS)
def test_no_template_syntax_left_in_output(stack: str) -> None:
    """No Jinja markers survive in a rendered template (plain modules are tested verbatim)."""
    for test_hooks in (False, True):
        modules = render_worker(config_of(stack), test_hooks=test_hooks).modules
        for name in rendered_names():
            for marker in ("{{", "{%", "{#"):  # JSON never opens with these; it may close "}}"
                assert marker not in modules[name], f"{marker!r} left in {name}"


@pytest.mark.parametrize("stack", STACKS)
def test_every_relative_import_is_in_the_bundle(stack: str) -> None:
    """Every `./module.js` a module imports is uploaded with it."""
    bundle = render_worker(config_of(stack))
    for name, source in bundle.modules.items():
        for target in re.findall(r"""\bfrom\s+["']\./([^"']+)["']""", source):
            assert target in bundle.modules, f"{name} imports ./{target}, not in the bundle"


def test_bundle_hash_follows_every_module() -> None:
    """WorkerBundle.sha256 changes when any module's content or name changes."""
    bundle = render_worker(config_of("dev"))
    same = WorkerBundle(modules=dict(bundle.modules))
    assert same.sha256 == bundle.sha256
    for name in bundle.modules:
        edited = dict(bundle.modules)
        edited[name] += "\n"
        assert WorkerBundle(modules=edited).sha256 != bundle.sha256, name
    renamed = dict(bundle.modules)
    renamed["util.js"] = renamed.pop("errors.js")
    assert WorkerBundle(modules=renamed).sha256 != bundle.sha256


def test_stack_routing_changes_the_bundle() -> None:
    """Stacks with different routing render different settings.js and bundle hashes."""
    dev, example = render_worker(config_of("dev")), render_worker(config_of("example"))
    assert dev.modules["settings.js"] != example.modules["settings.js"]
    assert dev.sha256 != example.sha256


@pytest.mark.parametrize("test_hooks", [False, True])
@pytest.mark.parametrize("stack", STACKS)
def test_rendered_modules_are_valid_javascript(
    tmp_path: Path, stack: str, test_hooks: bool
) -> None:
    """`node --check` accepts every rendered module as an ES module."""
    bundle = render_worker(config_of(stack), test_hooks=test_hooks)
    results = node_check(*write_modules(tmp_path / "worker", bundle))
    assert set(results) == set(bundle.modules)
    assert {n: err for n, (code, err) in results.items() if code != 0} == {}


def test_template_rendering_invalid_javascript_is_caught(tmp_path: Path, monkeypatch) -> None:
    """A template mistake that yields invalid JS (a value without `tojson`) fails node --check."""
    templates = tmp_path / "templates"
    shutil.copytree(TEMPLATE_DIR, templates)
    template = templates / "settings.js.j2"
    text = template.read_text(encoding="utf-8")
    assert "worker_name | tojson" in text
    # without tojson the name is pasted as code: `llm-gateway-dev worker` is not JavaScript
    template.write_text(text.replace("worker_name | tojson", "worker_name ~ ' worker'"))
    monkeypatch.setattr(render, "TEMPLATE_DIR", templates)
    write_modules(tmp_path / "worker", render_worker(config_of("dev")))
    code, stderr = node_check(tmp_path / "worker" / "settings.js")["settings.js"]
    assert code != 0 and "SyntaxError" in stderr
