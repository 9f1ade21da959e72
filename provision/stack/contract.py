"""What Python and the Worker must agree on, in one place.

The renderer writes these values into the Worker's generated `contract` module
(worker/templates/contract.ts.j2), so neither side spells them out by hand: the key and id
patterns, the binding names, the enums, and the KV layout of tenant records. Where the Worker
names a binding as a property (`env.GATEWAY_KV`), its `Env` type is keyed by these constants,
so a rename here fails the type check there.

KV layout (docs/decisions/0011-tenant-records-in-shards.md): tenant configuration lives in a
FIXED number of shard records, so the number of Pulumi resources (and of Cloudflare API calls
per `pulumi up`) never grows with the number of tenants.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Literal, get_args

# ---------------------------------------------------------------- keys and ids

KEY_PREFIX = "gw_live_"
KEY_PATTERN = r"^gw_live_[A-Za-z0-9]{32,64}$"
HASH_PATTERN = r"^[0-9a-f]{64}$"  # a key as stored: SHA-256, lower-case hex
SLUG_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"  # org and user ids
KEY_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
MODEL_ID_PATTERN = r"^[a-z0-9-]+/[A-Za-z0-9@._:/-]+$"  # <provider>/<model>

# ---------------------------------------------------------------- enums

FailureMode = Literal["fail-closed", "fail-open"]
KeyStatus = Literal["active", "revoked"]  # as declared in a stack file
TenantStatus = Literal["active", "suspended"]  # orgs and users
# What a key record says: its declared status, or "suspended" when its user or org is.
CompiledKeyStatus = Literal["active", "revoked", "suspended"]
FAILURE_MODES: tuple[str, ...] = get_args(FailureMode)
COMPILED_KEY_STATUSES: tuple[str, ...] = get_args(CompiledKeyStatus)

# ---------------------------------------------------------------- bindings

KV_BINDING = "GATEWAY_KV"
LEDGER_BINDING = "USAGE_LEDGER"
AI_BINDING = "AI"  # Workers AI, called with the gateway option (models of WORKERS_AI)
ANALYTICS_BINDING = "REQUEST_ANALYTICS"  # Workers Analytics Engine: one data point per request
WORKERS_AI = "workers-ai"
GOOGLE_AI_STUDIO = "google-ai-studio"  # Gemini's own API
GOOGLE_VERTEX_AI = "google-vertex-ai"  # Gemini on Vertex AI: the same wire, a project's path
AZURE_OPENAI = "azure-openai"  # OpenAI's wire at a resource's deployments
AWS_BEDROCK = "aws-bedrock"  # Bedrock's Converse API (binary event streams, SigV4)
CUSTOM_PREFIX = "custom-"  # AI Gateway's custom providers: custom-<slug> (routing.customProviders)
# Providers with a module of their own in worker/src/providers/ (others speak OpenAI's chat API
# and are declared in a stack's routing.openaiCompatible).
NATIVE_PROVIDERS = (
    "openai",
    "anthropic",
    WORKERS_AI,
    GOOGLE_AI_STUDIO,
    GOOGLE_VERTEX_AI,
    AZURE_OPENAI,
    AWS_BEDROCK,
)
EMBEDDING_PROVIDERS = ("openai", WORKERS_AI, AZURE_OPENAI)
# Models that speak another provider's wire, so that provider's routes serve them too: Azure's
# (OpenAI's Responses API and embeddings), Claude on Bedrock (Anthropic's Messages API, through
# InvokeModel), Gemini on Vertex AI (Gemini's own API, for the Gemini CLI and google-genai).
# Each: the provider, a pattern its model names match, and the wire.
MODEL_WIRES: tuple[dict[str, str], ...] = (
    {"provider": AZURE_OPENAI, "match": "", "wire": "openai"},
    {"provider": AWS_BEDROCK, "match": r"(^|\.)anthropic\.claude-", "wire": "anthropic"},
    {"provider": GOOGLE_VERTEX_AI, "match": "", "wire": GOOGLE_AI_STUDIO},
)  # providers of routing.embeddingModels
LEDGER_CLASS = "UsageLedger"  # its migrations: provision/deploy/migrations.py
PROVIDER_KEY_PREFIX = "PROVIDER_KEY_"
RATE_TIER_PREFIX = "RATE_TIER_"  # one Workers Rate Limiting binding per rate tier


def provider_key_binding(provider: str) -> str:
    """`workers-ai` → `PROVIDER_KEY_WORKERS_AI` (the secret the Worker reads for a provider)."""
    return PROVIDER_KEY_PREFIX + provider.upper().replace("-", "_")


def analytics_dataset(worker_name: str) -> str:
    """The Analytics Engine dataset of a Worker's requests (`llm-gateway` → `llm_gateway_requests`),
    the table name operators query with the SQL API."""
    return worker_name.replace("-", "_") + "_requests"


def rate_tier_binding(tier: str) -> str:
    """`standard` → `RATE_TIER_STANDARD` (the ratelimit binding of a rate tier)."""
    return RATE_TIER_PREFIX + tier.upper().replace("-", "_")


def rate_tier_namespace(worker_name: str, tier: str) -> int:
    """A stable namespace_id for a tier's binding: counters are shared by every binding with the
    same id in the account, so it is derived from the Worker and the tier (a stack may pin one)."""
    digest = hashlib.sha256(f"{worker_name}\0{tier}".encode()).digest()
    return 1 + int.from_bytes(digest[:4], "big") % (2**31 - 1)


# ---------------------------------------------------------------- routes

# Every model-carrying route the Worker serves, and how it reads the model: the Worker builds
# its router from this table (one handler per kind, type-checked), /v1/models lists a model's
# routes from it, and the route-conformance tests are generated from it.
#   kind      the handler: what the body is and how usage is read
#   provider  whose models it serves (None: any catalog model of the kind's model type)
#   native    True: the provider's own API under its slug; the body's `model` is the
#             provider's name (`gpt-4o-mini`), which is `<provider>/<model>` in the catalog
#   errors    the error shape: "openai", "anthropic", or Cloudflare's v4 envelope
#   streams   whether it can stream
RouteKind = Literal[
    "chat", "responses", "embeddings", "messages", "count_tokens", "workers_ai_run", "gemini"
]
ErrorShape = Literal["openai", "anthropic", "cloudflare", "google"]
ROUTES: tuple[dict[str, object], ...] = (
    {"path": "/v1/chat/completions", "kind": "chat", "provider": None, "native": False},
    {"path": "/v1/responses", "kind": "responses", "provider": "openai", "native": False},
    {"path": "/v1/embeddings", "kind": "embeddings", "provider": None, "native": False},
    {"path": "/v1/messages", "kind": "messages", "provider": "anthropic", "native": False},
    {
        "path": "/v1/messages/count_tokens",
        "kind": "count_tokens",
        "provider": "anthropic",
        "native": False,
    },
    {"path": "/openai/chat/completions", "kind": "chat", "provider": "openai", "native": True},
    {"path": "/openai/responses", "kind": "responses", "provider": "openai", "native": True},
    {"path": "/openai/embeddings", "kind": "embeddings", "provider": "openai", "native": True},
    {"path": "/anthropic/v1/messages", "kind": "messages", "provider": "anthropic", "native": True},
    {
        "path": "/anthropic/v1/messages/count_tokens",
        "kind": "count_tokens",
        "provider": "anthropic",
        "native": True,
    },
    {
        "path": "/workers-ai/v1/chat/completions",
        "kind": "chat",
        "provider": WORKERS_AI,
        "native": True,
    },
    {
        "path": "/workers-ai/v1/embeddings",
        "kind": "embeddings",
        "provider": WORKERS_AI,
        "native": True,
    },
    # Workers AI's own run API: the model is the rest of the path (`@cf/meta/llama-3.1-8b-instruct`)
    {"path": "/workers-ai/@cf/*", "kind": "workers_ai_run", "provider": WORKERS_AI, "native": True},
    # Gemini's own API: `models/{model}:{method}` (generateContent, streamGenerateContent,
    # countTokens; another method is a 404 in Google's shape); v1beta as the Gemini CLI calls it,
    # v1 as the google-genai SDKs default to, where /v1/models/{id} is also OpenAI's model route:
    # there only Gemini's three methods are Gemini's
    *(
        {
            "path": f"{prefix}/models/:call{{{pattern}}}",
            "kind": "gemini",
            "provider": GOOGLE_AI_STUDIO,
            "native": native,
        }
        for prefix, native, pattern in (
            ("/v1beta", False, "[^/]+:[A-Za-z]+"),
            ("/v1", False, "[^/]+:(?:generateContent|streamGenerateContent|countTokens)"),
            (f"/{GOOGLE_AI_STUDIO}/v1beta", True, "[^/]+:[A-Za-z]+"),
            (f"/{GOOGLE_AI_STUDIO}/v1", True, "[^/]+:[A-Za-z]+"),
        )
    ),
)
# Per kind: its error shape, whether it streams, which model types it serves, and whether the
# ledger meters it (count_tokens is free at Anthropic: authorised, never charged).
ROUTE_KINDS: dict[str, dict[str, object]] = {
    "chat": {"errors": "openai", "streams": True, "models": ["chat"], "metered": True},
    "responses": {"errors": "openai", "streams": True, "models": ["chat"], "metered": True},
    "embeddings": {"errors": "openai", "streams": False, "models": ["embedding"], "metered": True},
    "messages": {"errors": "anthropic", "streams": True, "models": ["chat"], "metered": True},
    "count_tokens": {"errors": "anthropic", "streams": False, "models": ["chat"], "metered": False},
    "workers_ai_run": {
        "errors": "cloudflare",
        "streams": True,
        "models": ["chat", "embedding"],
        "metered": True,
    },
    "gemini": {"errors": "google", "streams": True, "models": ["chat"], "metered": True},
}
# Kinds whose non-native routes serve every chat model: a model that does not speak the route's
# provider's wire goes through the chat translation (Anthropic's clients reach any model on
# /v1/messages; a bare name still means the route's provider's model, as Claude Code sends it).
BRIDGED_KINDS = ("messages", "count_tokens")


def speaks(model: str, provider: str) -> bool:
    """Whether `model` (`<slug>/<name>`) is `provider`'s or speaks its wire (MODEL_WIRES); the
    Worker's request/models.ts decides the same from the same table."""
    slug, _, name = model.partition("/")
    if slug == provider:
        return True
    return any(
        w["provider"] == slug and w["wire"] == provider and re.search(w["match"], name)
        for w in MODEL_WIRES
    )


def route_serves(route: dict[str, object], model: str, model_type: str) -> bool:
    """Whether a route of ROUTES serves a model of `model_type` ("chat" or "embedding")."""
    kinds: Any = ROUTE_KINDS[str(route["kind"])]["models"]
    if model_type not in kinds:
        return False
    provider = route["provider"]
    if provider is None or speaks(model, str(provider)):
        return True
    return not route["native"] and route["kind"] in BRIDGED_KINDS


# Spend beyond tokens (docs/decisions/0026). Tools a provider runs itself and bills per call or
# per container, by the name their `type` starts with (a dated suffix aside: web_search_20250305):
# Anthropic's server tools and the Responses API's built-in ones. Each needs a price (the
# stack's pricing.tools, else provision.stack.compiler.DEFAULT_TOOL_PRICES) or its request is refused.
BILLED_TOOLS = (
    "web_search",
    "web_search_preview",
    "web_fetch",
    "file_search",
    "code_interpreter",
    "code_execution",
    "image_generation",
)
# Tools the client runs, or whose calls the provider bills as tokens only: never priced per call.
TOKEN_TOOLS = (
    "function",
    "custom",
    "namespace",
    "local_shell",
    "shell",
    "apply_patch",
    "computer_use_preview",
    "computer",
    "bash",
    "text_editor",
    "memory",
    "mcp",
    "mcp_toolset",
    "tool_search_tool_regex",
    "tool_search_tool_bm25",
)
# The shape a request body may have before it is parsed (besides the stack's maxRequestBytes):
# how deep it nests and how many items one array or object holds. No client sends more; past
# them a body is a 400 before anything is admitted (docs/decisions/0025).
MAX_JSON_DEPTH = 128
MAX_JSON_ITEMS = 10_000
# Budget-clamped output (decision 0035): below this many output tokens (an org may set its own
# floor) a request that does not fit its headroom is refused rather than sent with a lower cap.
CLAMP_FLOOR_TOKENS = 256
# Cold-start pools (decision 0039), an org's defaults: at most this many isolates hold a slice of
# the org's budget to admit a user's first request there without awaiting the ledger, each at
# most this worst case (µUSD) per user between two of its reports.
COLD_START_ISOLATES = 16
COLD_START_ALLOWANCE_MICROS = 10_000
# Spend-rate breakers count in fixed UTC windows of these lengths (ms), named as the stack names
# them (spendPerMinuteUsd, spendPerHourUsd) and as GET /v1/usage and the 429 show them.
SPEND_RATE_WINDOWS = {"minute": 60_000, "hour": 3_600_000}
# The provider namespaces of native routes: any other path under them is a 404, never a proxy.
NATIVE_PREFIXES = ("/openai/", "/anthropic/", f"/{WORKERS_AI}/", f"/{GOOGLE_AI_STUDIO}/")

# ---------------------------------------------------------------- KV layout

# Version of every Pulumi-owned record's shape (`v` field); 2 = sharded layout.
SCHEMA_VERSION = 2

# Hot path: API keys grouped by the first hex digits of their SHA-256. 256 shards at most, so
# a known key is one cached read of its shard, and a key change rewrites one shard.
KEY_SHARD_PREFIX = "keys:"
KEY_SHARD_CHARS = 2

# Admin directory: whole organizations (settings, users, key ids) grouped by the first hex
# digit of SHA-256(org id). 16 shards at most; adding a user rewrites its org's shard only.
DIRECTORY_SHARD_PREFIX = "dir:"
DIRECTORY_SHARD_CHARS = 1

# Present once the stack has been deployed: schema version and layout. Written only when
# the layout itself changes, never by an ordinary tenant change.
INDEX_KEY = "meta:tenants"

# Pulumi owns every key with these prefixes (a local reload deletes stale ones); the Worker
# owns `revoked:` (emergency revocation) and `unsettled:` (usage kept for reconciliation).
MANAGED_PREFIXES = (KEY_SHARD_PREFIX, DIRECTORY_SHARD_PREFIX, "meta:")
REVOKED_PREFIX = "revoked:"
UNSETTLED_PREFIX = "unsettled:"

# Wave 1's one record per key (schema version 1). While an upgrading deploy propagates, an edge
# may see the new script before its shards: the Worker then reads these, and only while that
# edge's `meta:tenants` is not yet the new schema version (docs/decisions/0011).
LEGACY_KEY_PREFIX = "apikey:"
LEGACY_SCHEMA_VERSION = 1


def key_shard(sha256_hex: str) -> str:
    """The shard record holding a key, from the key's SHA-256 (64 lower-case hex)."""
    return KEY_SHARD_PREFIX + sha256_hex[:KEY_SHARD_CHARS]


def directory_shard(org_id: str) -> str:
    """The directory record holding an organization, its users and their key ids."""
    digest = hashlib.sha256(org_id.encode("utf-8")).hexdigest()
    return DIRECTORY_SHARD_PREFIX + digest[:DIRECTORY_SHARD_CHARS]


def all_directory_shards() -> list[str]:
    """Every directory record that may exist (the admin API reads them all to scan)."""
    width = DIRECTORY_SHARD_CHARS
    return [f"{DIRECTORY_SHARD_PREFIX}{i:0{width}x}" for i in range(16**width)]


def template_values() -> dict[str, object]:
    """What contract.ts.j2 renders: the same names, the same values."""
    return {
        "KEY_PREFIX": KEY_PREFIX,
        "KEY_PATTERN": KEY_PATTERN,
        "HASH_PATTERN": HASH_PATTERN,
        "SLUG_PATTERN": SLUG_PATTERN,
        "KEY_ID_PATTERN": KEY_ID_PATTERN,
        "MODEL_ID_PATTERN": MODEL_ID_PATTERN,
        "FAILURE_MODES": FAILURE_MODES,
        "COMPILED_KEY_STATUSES": COMPILED_KEY_STATUSES,
        "KV_BINDING": KV_BINDING,
        "LEDGER_BINDING": LEDGER_BINDING,
        "AI_BINDING": AI_BINDING,
        "ANALYTICS_BINDING": ANALYTICS_BINDING,
        "WORKERS_AI": WORKERS_AI,
        "NATIVE_PROVIDERS": NATIVE_PROVIDERS,
        "MODEL_WIRES": MODEL_WIRES,
        "ROUTES": ROUTES,
        "ROUTE_KINDS": ROUTE_KINDS,
        "BRIDGED_KINDS": BRIDGED_KINDS,
        "NATIVE_PREFIXES": NATIVE_PREFIXES,
        "BILLED_TOOLS": BILLED_TOOLS,
        "TOKEN_TOOLS": TOKEN_TOOLS,
        "MAX_JSON_DEPTH": MAX_JSON_DEPTH,
        "MAX_JSON_ITEMS": MAX_JSON_ITEMS,
        "CLAMP_FLOOR_TOKENS": CLAMP_FLOOR_TOKENS,
        "COLD_START_ISOLATES": COLD_START_ISOLATES,
        "COLD_START_ALLOWANCE_MICROS": COLD_START_ALLOWANCE_MICROS,
        "SPEND_RATE_WINDOWS": SPEND_RATE_WINDOWS,
        "PROVIDER_KEY_PREFIX": PROVIDER_KEY_PREFIX,
        "RATE_TIER_PREFIX": RATE_TIER_PREFIX,
        "SCHEMA_VERSION": SCHEMA_VERSION,
        "KEY_SHARD_PREFIX": KEY_SHARD_PREFIX,
        "KEY_SHARD_CHARS": KEY_SHARD_CHARS,
        "DIRECTORY_SHARD_PREFIX": DIRECTORY_SHARD_PREFIX,
        "DIRECTORY_SHARD_CHARS": DIRECTORY_SHARD_CHARS,
        "INDEX_KEY": INDEX_KEY,
        "REVOKED_PREFIX": REVOKED_PREFIX,
        "UNSETTLED_PREFIX": UNSETTLED_PREFIX,
        "LEGACY_KEY_PREFIX": LEGACY_KEY_PREFIX,
        "LEGACY_SCHEMA_VERSION": LEGACY_SCHEMA_VERSION,
    }
