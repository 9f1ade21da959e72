// Per-request gateway options read from cf-aig-* headers (cf-contract.md 2.1, 3.1).
import { createHash } from "node:crypto";
import { entriesOf, isJsonObject, prop } from "./http";
import { providerAuthHeader } from "./routes";
import type {
  CachePlan,
  Call,
  CustomCost,
  GatewayConfig,
  HeaderParse,
  Metadata,
  RequestHeaders,
  RetryPolicy,
  Usage,
} from "./types";

const METADATA_MAX_ENTRIES = 5;
const CUSTOM_KEY_DEFAULT_TTL_S = 300; // a custom cache key works with caching off: 5 min
const MAX_ATTEMPTS = 5;
const MAX_RETRY_DELAY_MS = 5000;

/**
 * cf-aig-metadata: a JSON object; only the first five entries are kept. Object (and array)
 * values make the request invalid (the 400 code is UNCONFIRMED, see errors.ts 2992); we check
 * every entry, not just the kept five, so a bad sixth entry still surfaces.
 * Returns {value} (null when absent) or {error}.
 */
export function parseMetadata(raw: string | undefined): HeaderParse<Metadata> {
  if (raw === undefined) return { value: null };
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return { error: "cf-aig-metadata is not valid JSON" };
  }
  if (!isJsonObject(parsed)) {
    return { error: "cf-aig-metadata must be a JSON object" };
  }
  const entries = entriesOf(parsed);
  for (const [key, value] of entries) {
    if (value !== null && typeof value === "object") {
      return {
        error: `cf-aig-metadata value of "${key}" is an object; only strings, numbers and booleans are supported`,
      };
    }
  }
  // The loop above rejected every object value, so what is left are JSON scalars.
  return { value: Object.fromEntries(entries.slice(0, METADATA_MAX_ENTRIES)) as Metadata };
}

/**
 * cf-aig-custom-cost: {per_token_in?, per_token_out?} in USD per token, or {total_cost}
 * (types only, UNCONFIRMED). Returns {value} (null when absent) or {error}.
 */
export function parseCustomCost(raw: string | undefined): HeaderParse<CustomCost> {
  if (raw === undefined) return { value: null };
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return { error: "cf-aig-custom-cost is not valid JSON" };
  }
  const fields = ["per_token_in", "per_token_out", "total_cost"];
  const valid =
    isJsonObject(parsed) &&
    fields.some((f) => parsed[f] !== undefined) &&
    fields.every((f) => {
      const value = parsed[f];
      return value === undefined || (typeof value === "number" && value >= 0);
    });
  // valid: the three known fields are absent or non-negative numbers.
  return valid
    ? { value: parsed as CustomCost }
    : { error: "cf-aig-custom-cost must be {per_token_in, per_token_out} (non-negative USD per token)" };
}

/** USD cost of a request under a custom cost, or null without one (we keep no price catalogue). */
export function costOf(customCost: CustomCost | null, usage: Usage | null): number | null {
  if (!customCost) return null;
  if (typeof customCost.total_cost === "number") return customCost.total_cost;
  if (!usage) return null;
  return (
    (usage.prompt_tokens ?? 0) * (customCost.per_token_in ?? 0) +
    (usage.completion_tokens ?? 0) * (customCost.per_token_out ?? 0)
  );
}

/** Whether the gateway would keep a log for this request (cf-aig-collect-log overrides). */
export function collectsLog(gateway: GatewayConfig | undefined, headers: RequestHeaders): boolean {
  const header = headers["cf-aig-collect-log"];
  if (header === "true") return true;
  if (header === "false") return false;
  return gateway?.collectLogs ?? false;
}

/**
 * Cache decision for a prepared call: {key, ttl} or null when the response must not be
 * cached or looked up (streaming, skip-cache, TTL 0). Deprecated cf-skip-cache/cf-cache-ttl
 * aliases are honoured. Keys are namespaced per gateway.
 */
export function cachePlan(
  gatewayId: string,
  gateway: GatewayConfig,
  headers: RequestHeaders,
  call: Call,
  rawBody: string,
): CachePlan | null {
  if (call.stream) return null;
  if ((headers["cf-aig-skip-cache"] ?? headers["cf-skip-cache"]) === "true") return null;
  const customKey = headers["cf-aig-cache-key"];
  const ttlHeader = headers["cf-aig-cache-ttl"] ?? headers["cf-cache-ttl"];
  let ttl = ttlHeader === undefined ? gateway.cacheTtl : Number(ttlHeader);
  if (!Number.isFinite(ttl) || ttl < 0) ttl = gateway.cacheTtl;
  if (customKey !== undefined && ttl === 0) ttl = CUSTOM_KEY_DEFAULT_TTL_S;
  if (ttl <= 0) return null;
  if (customKey !== undefined) return { key: `${gatewayId}\u0000custom\u0000${customKey}`, ttl };
  const key = createHash("sha256")
    .update(
      [gatewayId, call.route.head, call.route.endpoint, call.model ?? "", providerAuthHeader(call), rawBody].join(
        "\u0000",
      ),
    )
    .digest("hex");
  return { key, ttl };
}

function intHeader(value: unknown, min: number, max: number): number | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  const n = Number(value);
  return Number.isFinite(n) ? Math.min(Math.max(Math.floor(n), min), max) : undefined;
}

/**
 * Retry/timeout policy from cf-aig-max-attempts, cf-aig-retry-delay, cf-aig-backoff and
 * cf-aig-request-timeout; a Universal step's `config` wins over headers.
 */
export function retryPolicy(headers: RequestHeaders, stepConfig: unknown = {}): RetryPolicy {
  return {
    attempts: intHeader(prop(stepConfig, "maxAttempts") ?? headers["cf-aig-max-attempts"], 1, MAX_ATTEMPTS) ?? 1,
    delayMs: intHeader(prop(stepConfig, "retryDelay") ?? headers["cf-aig-retry-delay"], 0, MAX_RETRY_DELAY_MS) ?? 0,
    backoff: prop(stepConfig, "backoff") ?? headers["cf-aig-backoff"] ?? "constant",
    timeoutMs: intHeader(
      prop(stepConfig, "requestTimeout") ?? headers["cf-aig-request-timeout"],
      0,
      Number.MAX_SAFE_INTEGER,
    ),
  };
}

/** Delay before retry number `retry` (1-based). The exact backoff formulas are UNCONFIRMED. */
export function retryDelay(policy: RetryPolicy, retry: number): number {
  if (policy.backoff === "exponential") return policy.delayMs * 2 ** (retry - 1);
  if (policy.backoff === "linear") return policy.delayMs * retry;
  return policy.delayMs;
}
