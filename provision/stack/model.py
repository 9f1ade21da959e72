"""The stack config model: the typed shape of everything a stack file decides.

Validation that spans fields (references between tenants, models and prices) is in
provision/stack/references.py; reading files and wording errors is in provision/stack/config.py.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

from pydantic import Field, WithJsonSchema, field_validator

from provision.stack import contract
from provision.stack.contract import (
    CLAMP_FLOOR_TOKENS,
    COLD_START_ALLOWANCE_MICROS,
    COLD_START_ISOLATES,
    FailureMode,
    KeyStatus,
    TenantStatus,
)
from provision.stack.endpoints import AwsBedrock, AzureOpenai, CustomProvider, VertexAi
from provision.stack.endpoints import Strict as _Strict
from provision.stack.keys import HASH_PATTERN

PROJECT = "llm-gateway"
ROOT = Path(__file__).resolve().parents[2]
STACKS_DIR = ROOT / "stacks"

SLUG = contract.SLUG_PATTERN
KEY_ID = contract.KEY_ID_PATTERN
MODEL_ID = contract.MODEL_ID_PATTERN

# Secret settings come from `pulumi config set --secret`; the model only checks that a
# stack file holds them encrypted, never their values.
SECRET_KEYS = ("adminApiKey", "aiGatewayToken", "providerApiKeys", "alertWebhookSecret")

# Amounts are YAML numbers; the schema says so (pydantic would describe "number or any string").
Usd = Annotated[
    Decimal,
    Field(ge=0, max_digits=18, decimal_places=6),
    WithJsonSchema(
        {"type": "number", "minimum": 0, "description": "US dollars, at most 6 decimals"}
    ),
]
# A spend-rate breaker's amount: more than zero (a breaker at $0 would refuse everything).
RateUsd = Annotated[
    Decimal,
    Field(gt=0, max_digits=18, decimal_places=6),
    WithJsonSchema(
        {
            "type": "number",
            "exclusiveMinimum": 0,
            "description": "US dollars per window, at most 6 decimals",
        }
    ),
]
Slug = Annotated[str, Field(pattern=SLUG)]
ModelId = Annotated[str, Field(pattern=MODEL_ID)]
# A model family offered by pattern: `<provider>/<prefix>*` (routing.modelPatterns)
ModelPatternId = Annotated[str, Field(pattern=r"^[a-z0-9-]+/[A-Za-z0-9@._:/-]*\*$")]


def _thresholds(values: list[int] | None) -> list[int] | None:
    """Percentages of a month's limit, each once, in rising order."""
    if values is None:
        return None
    if len(set(values)) != len(values):
        raise ValueError("each threshold may appear once")
    return sorted(values)


# A budget alert threshold: a percentage of the month's limit or budget (100 = all of it).
Threshold = Annotated[int, Field(ge=1, le=1000)]


class RateLimit(_Strict):
    """AI Gateway's own rate limit over the whole gateway; 0 turns it off."""

    limit: int = Field(0, ge=0)
    interval: int = Field(0, ge=0, description="window length in seconds")
    technique: Literal["fixed", "sliding"] = "fixed"


class AiGatewaySettings(_Strict):
    cacheTtl: int = Field(0, ge=0, le=2_592_000, description="seconds; 0 = caching off")
    cacheInvalidateOnUpdate: bool = True
    collectLogs: bool = True
    authentication: bool = True
    rateLimit: RateLimit = RateLimit()


AliasName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}$")]
# A browser origin as the Origin header carries it: scheme, host, optional port; no path.
Origin = Annotated[str, Field(pattern=r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$", max_length=253)]
# A model or alias → the models to try after it, in order, on a retryable failure.
Fallbacks = dict[AliasName, Annotated[list[ModelId], Field(min_length=1, max_length=5)]]


class Retries(_Strict):
    """AI Gateway's own retries of one model's provider calls (cf-aig-* request headers)."""

    maxAttempts: int = Field(1, ge=1, le=5, description="attempts AI Gateway makes (1 = no retry)")
    retryDelayMs: int = Field(0, ge=0, le=5_000)
    backoff: Literal["constant", "linear", "exponential"] = "constant"
    requestTimeoutMs: int | None = Field(
        None, ge=100, le=600_000, description="AI Gateway's time to first byte per attempt"
    )


class SpendRate(Protocol):
    """Spend-rate breakers, declared on rate tiers, users and keys: USD a subject may spend per
    UTC minute and per UTC hour (worst cases held, real costs counted, as with monthly limits);
    over it, 429 spend_rate_exceeded until the window ends."""

    @property
    def spendPerMinuteUsd(self) -> Decimal | None: ...

    @property
    def spendPerHourUsd(self) -> Decimal | None: ...


def _per_minute() -> Any:
    return Field(None, description="spend-rate breaker: USD per UTC minute")


def _per_hour() -> Any:
    return Field(None, description="spend-rate breaker: USD per UTC hour")


class RateTier(_Strict):
    """Requests per window per user (the Workers Rate Limiting binding), open requests, and
    spend-rate breakers (per user, or per key with keyedBy: key)."""

    requests: int = Field(
        ge=1, le=1_000_000, description="requests per window, per user (or per key: keyedBy)"
    )
    periodSeconds: Literal[10, 60] = Field(60, description="the binding allows 10 or 60")
    keyedBy: Literal["user", "key"] = Field(
        "user", description="count per user (all their keys together) or per API key"
    )
    maxConcurrent: int | None = Field(
        None,
        ge=1,
        le=10_000,
        description="requests (streams included) a user may have open at once",
    )
    namespaceId: int | None = Field(
        None,
        ge=1,
        lt=2**31,
        description="the binding's namespace_id (unique per account; bindings sharing it share "
        "counters); unset = derived from the Worker name and the tier name",
    )
    spendPerMinuteUsd: RateUsd | None = _per_minute()
    spendPerHourUsd: RateUsd | None = _per_hour()


class Routing(_Strict):
    """The models this gateway offers, the default one, and short aliases for clients."""

    models: list[ModelId] = Field(
        min_length=1, description="chat models (chat, Responses, Messages)"
    )
    embeddingModels: list[ModelId] = Field(
        [], description="embedding models (the embeddings routes); openai or workers-ai"
    )
    defaultModel: ModelId
    modelPatterns: list[ModelPatternId] = Field(
        [],
        description="chat model families offered without a stack edit (anthropic/claude-*): an id "
        "under one is served when the price catalog knows it (at the catalog's price), refused "
        "when it does not",
    )
    aliases: dict[AliasName, ModelId] = {}
    fallbacks: Fallbacks = Field(
        {},
        description="model or alias → the models to try next, in order, when its provider fails "
        "before answering (5xx, 429, timeout, unreachable)",
    )
    retries: dict[ModelId, Retries] = Field({}, description="AI Gateway's own retries, per model")
    workersAiStandIns: dict[ModelId, ModelId] = Field(
        {},
        description="model → a workers-ai model that answers for it through the AI binding, "
        "without the gateway, when AI Gateway itself is unreachable",
    )
    openaiCompatible: dict[
        Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")],
        Annotated[str, Field(pattern=r"^(compat|[a-z0-9-]+(/[A-Za-z0-9._-]+)+)$")],
    ] = Field(
        {},
        description="providers that speak OpenAI's chat API: slug → its AI Gateway chat path "
        "(e.g. groq/chat/completions), or 'compat' for AI Gateway's unified endpoint",
    )
    vertexAi: VertexAi | None = Field(
        None,
        description="the project and region of the google-vertex-ai models (required with one)",
    )
    azureOpenai: AzureOpenai | None = Field(
        None,
        description="the resource and deployments of the azure-openai models (required with one)",
    )
    awsBedrock: AwsBedrock | None = Field(
        None, description="the region of the aws-bedrock models (required with one)"
    )
    byokAliases: dict[
        Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")],
        Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")],
    ] = Field(
        {},
        description="provider → the name of the key stored on the gateway (BYOK) to use for it "
        "(cf-aig-byok-alias); unset = the gateway's default key. Only for providers without a "
        "key in providerApiKeys",
    )
    customProviders: dict[
        Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,30}$")], CustomProvider
    ] = Field(
        {},
        description="AI Gateway custom providers this stack creates: slug → the server; its "
        "models are custom-<slug>/<model>",
    )
    upstreamTimeoutMs: int = Field(120_000, ge=100, le=600_000, description="time to first byte")
    maxOutputTokens: int = Field(
        4096, ge=1, le=1_000_000, description="output cap sent upstream when a client sets none"
    )
    maxContextTokens: int = Field(
        1_048_576,
        ge=1_000,
        le=10_000_000,
        description="input bound of a Responses request continuing stored state "
        "(previous_response_id, conversation), whose input the gateway cannot see",
    )
    maxRequestBytes: int = Field(
        16 * 1024 * 1024,
        ge=1024,
        le=100 * 1024 * 1024,
        description="largest request body the Worker reads (413 above it); Workers accept "
        "100 MB at most",
    )

    @property
    def catalog(self) -> list[str]:
        """Every model the gateway offers: chat models, then embedding models."""
        return [*self.models, *self.embeddingModels]


class TokenPrices(_Strict):
    """USD per million tokens; cached input tokens are charged at their own price if given."""

    inputPerMTok: Usd
    outputPerMTok: Usd
    cachedInputPerMTok: Usd | None = None
    cacheWriteInputPerMTok: Usd | None = Field(
        None,
        description="input written to a prompt cache (Anthropic: 5 minutes); unset = the input price",
    )
    cacheWrite1hInputPerMTok: Usd | None = Field(
        None,
        description="input written to Anthropic's 1-hour prompt cache (2x input); unset = a "
        "request asking for 1-hour caching is refused",
    )


class LongContextPrice(TokenPrices):
    """Every token of a request whose input is above `aboveInputTokens` (Anthropic's and
    Google's long-context prices: the whole request, not the tokens past the line)."""

    aboveInputTokens: int = Field(ge=1, le=100_000_000)


class Price(TokenPrices):
    longContext: LongContextPrice | None = Field(
        None, description="the prices of a request whose input is above a size"
    )
    perRequestUsd: Usd | None = Field(
        None,
        description="what the provider bills per request beyond its tokens (an answer from "
        "AI Gateway's cache pays none)",
    )


class ToolPrice(_Strict):
    """A server-side tool the provider bills beyond tokens: per call (per container for
    code_interpreter)."""

    perCallUsd: Usd
    maxCallsPerRequest: int = Field(
        10,
        ge=1,
        le=1000,
        description="the calls a request's worst case counts when it sets no bound of its own "
        "(Anthropic's max_uses, the Responses API's max_tool_calls)",
    )
    inputTokensPerCall: int = Field(
        20_000,
        ge=0,
        le=1_000_000,
        description="the input tokens a call may add to the request's own (what it fetched, "
        "read back by the model): counted in the worst case, and an answer reporting more than "
        "its worst case is recorded at it",
    )


ToolName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
TierName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
Multiplier = Annotated[Decimal, Field(gt=0, le=10, decimal_places=3)]


class Pricing(_Strict):
    models: dict[ModelId, Price] = Field(
        {},
        description="a model's own price, over the catalog's (genai-prices, read when the stack "
        "is compiled); `provision models` lists every model's and where it comes from",
    )
    default: Price | None = Field(
        None,
        description="price of a model neither declared nor known to the catalog; unset = such a "
        "model is a validation error",
    )
    tools: dict[ToolName, ToolPrice] = Field(
        {},
        description="server-side tools billed per call, over the documented defaults "
        "(web_search, web_fetch, file_search, code_interpreter); a request asking for a "
        "billed tool with no price is refused",
    )
    serviceTiers: dict[TierName, Multiplier] = Field(
        {},
        description="a service tier's prices as a multiple of the model's, over the defaults "
        "(default, standard, auto: 1; flex: 0.5; priority: 2); a request asking for another "
        "tier is refused",
    )

    @field_validator("tools")
    @classmethod
    def _billed(cls, tools: dict[str, ToolPrice]) -> dict[str, ToolPrice]:
        for name in tools:
            if name not in contract.BILLED_TOOLS or name == "web_search_preview":
                known = ", ".join(t for t in contract.BILLED_TOOLS if t != "web_search_preview")
                raise ValueError(f"'{name}' is no tool a provider bills per call (known: {known})")
        return tools


class CustomDomain(_Strict):
    hostname: str = Field(pattern=r"^[a-z0-9.-]+\.[a-z]{2,}$")
    zoneId: str = Field(pattern=r"^[0-9a-f]{32}$")


class ApiKey(_Strict):
    id: str = Field(pattern=KEY_ID)
    name: str = ""
    sha256: str = Field(json_schema_extra={"pattern": "^[0-9a-f]{64}$"})  # checked below, kindly
    created: dt.date
    expires: dt.datetime | dt.date | None = None
    status: KeyStatus = "active"
    monthlyLimitUsd: Usd | None = Field(
        None,
        description="this key's own monthly limit, a share of its user's (at most the user's); "
        "unset: the user's limit alone",
    )
    spendPerMinuteUsd: RateUsd | None = _per_minute()
    spendPerHourUsd: RateUsd | None = _per_hour()

    @field_validator("sha256")
    @classmethod
    def _is_hash(cls, value: str) -> str:
        if not HASH_PATTERN.match(value):
            raise ValueError(
                "must be the SHA-256 of the key as 64 lower-case hex characters "
                "(plain keys never go in a stack file; use `provision keys create`)"
            )
        return value

    def expires_at(self) -> int | None:
        """Expiry as epoch seconds; a bare date means 00:00 UTC of that day."""
        if self.expires is None:
            return None
        if isinstance(self.expires, dt.datetime):
            moment = self.expires
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=dt.UTC)
        else:
            moment = dt.datetime.combine(self.expires, dt.time(), tzinfo=dt.UTC)
        return int(moment.timestamp())


class Alerts(_Strict):
    """Budget alerts: each threshold crossed is sent once per month to the webhook, signed
    with the `alertWebhookSecret` secret (HMAC-SHA256)."""

    webhookUrl: str = Field(
        pattern=r"^(https://[^\s/]+|http://(127\.0\.0\.1|localhost)(:\d+)?)(/\S*)?$",
        description="https, or http to 127.0.0.1/localhost for local tests",
    )
    orgThresholds: list[Threshold] = Field(
        [50, 80, 100], max_length=10, description="% of an org's monthly budget"
    )
    userThresholds: list[Threshold] = Field(
        [80, 100], max_length=10, description="% of a user's monthly limit"
    )

    _unique = field_validator("orgThresholds", "userThresholds")(_thresholds)


class OrgAlerts(_Strict):
    """An org's own thresholds, instead of the stack's."""

    orgThresholds: list[Threshold] | None = Field(None, max_length=10)
    userThresholds: list[Threshold] | None = Field(None, max_length=10)

    _unique = field_validator("orgThresholds", "userThresholds")(_thresholds)


class User(_Strict):
    id: Slug
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    org: Slug
    monthlyLimitUsd: Usd
    status: TenantStatus = "active"
    allowedModels: list[ModelId | ModelPatternId] | None = None
    defaultModel: ModelId | None = Field(None, description="before the org's and the stack's")
    aliases: dict[AliasName, ModelId] = Field({}, description="before the org's and the stack's")
    rateTier: Slug | None = Field(None, description="a rateTiers name; unset = the org's")
    alertThresholds: list[Threshold] | None = Field(
        None, max_length=10, description="% of the monthly limit; unset = the org's, the stack's"
    )
    keys: list[ApiKey] = []
    spendPerMinuteUsd: RateUsd | None = _per_minute()
    spendPerHourUsd: RateUsd | None = _per_hour()

    _unique = field_validator("alertThresholds")(_thresholds)


class ColdStart(_Strict):
    """Cold-start pools (docs/decisions/0039): an isolate admits the first request of a user who
    has no budget lease there from a slice of the org's budget, without awaiting the ledger."""

    isolates: int = Field(
        COLD_START_ISOLATES,
        ge=1,
        le=10_000,
        description="at most this many isolates hold a pool at once (about as many as serve the "
        "org); each user's last isolates x allowanceUsd x 2 of headroom is admitted by the ledger",
    )
    allowanceUsd: RateUsd = Field(
        Decimal(COLD_START_ALLOWANCE_MICROS) / 1_000_000,
        description="the largest worst case a pool admits, and what one pool admits per user "
        "between two of its reports",
    )


class Organization(_Strict):
    id: Slug
    name: str = Field(min_length=1, max_length=200)
    monthlyBudgetUsd: Usd
    failureMode: FailureMode = "fail-closed"
    fallbackDailyLimitUsd: Usd = Decimal("0")
    status: TenantStatus = "active"
    allowedModels: list[ModelId | ModelPatternId] | None = None
    defaultModel: ModelId | None = None
    cacheTtl: int = Field(0, ge=0, le=2_592_000, description="AI Gateway cache TTL; 0 = off")
    clientCacheControl: bool = Field(
        False, description="honour a client's cf-aig-skip-cache and cf-aig-cache-ttl headers"
    )
    priceOverrides: dict[ModelId, Price] = {}
    aliases: dict[AliasName, ModelId] = Field({}, description="before the stack's")
    fallbacks: Fallbacks = Field({}, description="before the stack's, for the same name")
    rateTier: Slug | None = Field(None, description="a rateTiers name; unset = no rate limit")
    corsOrigins: list[Origin] = Field(
        [],
        max_length=100,
        description="browser origins allowed to call the gateway with this org's keys "
        "(e.g. https://app.example.com); none by default",
    )
    alerts: OrgAlerts | None = Field(None, description="thresholds instead of the stack's")
    logPrompts: bool = Field(
        False, description="put request bodies (prompts) in this org's request log lines"
    )
    allowUnpriced: bool = Field(
        False,
        description="let this org's requests use billed tools and service tiers the stack has no "
        "price for (charged as tokens only) and background Responses runs (charged when they "
        "end); off: such a request is refused",
    )
    shareStoredResponses: bool = Field(
        False,
        description="let this org's users continue each other's stored Responses "
        "(previous_response_id); off: only the user who created one",
    )
    shareOrgUsage: bool = Field(
        False,
        description="let this org's keys read the org's month (spent, budget, remaining) on "
        "GET /v1/usage; off: each key reads its own user's only",
    )
    clampOutput: bool = Field(
        True,
        description="send a request whose worst case does not fit the budget's headroom with a "
        "lower output cap (max_tokens) that fits, rather than refuse it; off: refused (429)",
    )
    clampFloorTokens: int = Field(
        CLAMP_FLOOR_TOKENS,
        ge=1,
        le=1_000_000,
        description="the lowest output cap a request is lowered to; below it the request is refused",
    )
    coldStart: ColdStart | Literal[False] = Field(
        ColdStart(),
        description="admit a user's first request in an isolate from a pool of the org's budget, "
        "without awaiting the ledger; false: every such request awaits it",
    )


class Tenants(_Strict):
    organizations: list[Organization] = []
    users: list[User] = []


class StackConfig(_Strict):
    """Everything a stack decides, except secrets (they stay in Pulumi's secret config)."""

    accountId: str = Field(pattern=r"^[0-9a-f]{32}$")
    gatewayId: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")
    workerName: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    compatibilityDate: dt.date
    gatewayBaseUrl: str = Field("https://gateway.ai.cloudflare.com/v1", pattern=r"^https?://")
    workersDevSubdomain: str | None = Field(
        None,
        pattern=r"^[a-z0-9][a-z0-9-]{0,62}$",
        description="the account's workers.dev subdomain",
    )
    customDomain: CustomDomain | None = None
    allowDemoKeys: bool = False
    aiGateway: AiGatewaySettings = AiGatewaySettings()
    routing: Routing
    pricing: Pricing = Pricing()
    rateTiers: dict[Slug, RateTier] = Field({}, description="per-user rate limits, by tier name")
    alerts: Alerts | None = Field(None, description="budget alerts to a webhook; none by default")
    tenants: Tenants = Tenants()
