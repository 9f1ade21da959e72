// Per-request gateway options read from cf-aig-* headers (cf-contract.md 2.1, 3.1).
import { createHash } from "node:crypto";
import { providerAuthHeader } from "./routes.mjs";

const METADATA_MAX_ENTRIES = 5;
const CUSTOM_KEY_DEFAULT_TTL_S = 300; // a custom cache key works with caching off: 5 min
const MAX_ATTEMPTS = 5;
const MAX_RETRY_DELAY_MS = 5000;

/**
 * cf-aig-metadata: a JSON object; only the first five entries are kept. Object (and array)
 * values make the request invalid (the 400 code is UNCONFIRMED, see errors.mjs 2992); we check
 * every entry, not just the kept five, so a bad sixth entry still surfaces.
 * Returns {value} (null when absent) or {error}.
 */
export function parseMetadata(raw) {
  if (raw === undefined) return { value: null };
  let parsed;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return { error: "cf-aig-metadata is not valid JSON" };
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    return { error: "cf-aig-metadata must be a JSON object" };
  }
  const entries = Object.entries(parsed);
  for (const [key, value] of entries) {
    if (value !== null && typeof value === "object") {
      return { error: `cf-aig-metadata value of "${key}" is an object; only strings, numbers and booleans are supported` };
    }
  }
  return { value: Object.fromEntries(entries.slice(0, METADATA_MAX_ENTRIES)) };
}

/**
 * cf-aig-custom-cost: {per_token_in?, per_token_out?} in USD per token, or {total_cost}
 * (types only, UNCONFIRMED). Returns {value} (null when absent) or {error}.
 */
export function parseCustomCost(raw) {
  if (raw === undefined) return { value: null };
  let parsed;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return { error: "cf-aig-custom-cost is not valid JSON" };
  }
  const fields = ["per_token_in", "per_token_out", "total_cost"];
  const valid = parsed !== null && typeof parsed === "object" && !Array.isArray(parsed)
    && fields.some((f) => parsed[f] !== undefined)
    && fields.every((f) => parsed[f] === undefined || (typeof parsed[f] === "number" && parsed[f] >= 0));
  return valid ? { value: parsed } : { error: "cf-aig-custom-cost must be {per_token_in, per_token_out} (non-negative USD per token)" };
}

/** USD cost of a request under a custom cost, or null without one (we keep no price catalogue). */
export function costOf(customCost, usage) {
  if (!customCost) return null;
  if (typeof customCost.total_cost === "number") return customCost.total_cost;
  if (!usage) return null;
  return (usage.prompt_tokens ?? 0) * (customCost.per_token_in ?? 0) + (usage.completion_tokens ?? 0) * (customCost.per_token_out ?? 0);
}

/** Whether the gateway would keep a log for this request (cf-aig-collect-log overrides). */
export function collectsLog(gateway, headers) {
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
export function cachePlan(gatewayId, gateway, headers, call, rawBody) {
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
    .update([gatewayId, call.route.head, call.route.endpoint, call.model ?? "", providerAuthHeader(call), rawBody].join("\u0000"))
    .digest("hex");
  return { key, ttl };
}

function intHeader(value, min, max) {
  if (value === undefined || value === null || value === "") return undefined;
  const n = Number(value);
  return Number.isFinite(n) ? Math.min(Math.max(Math.floor(n), min), max) : undefined;
}

/**
 * Retry/timeout policy from cf-aig-max-attempts, cf-aig-retry-delay, cf-aig-backoff and
 * cf-aig-request-timeout; a Universal step's `config` wins over headers.
 */
export function retryPolicy(headers, stepConfig = {}) {
  return {
    attempts: intHeader(stepConfig.maxAttempts ?? headers["cf-aig-max-attempts"], 1, MAX_ATTEMPTS) ?? 1,
    delayMs: intHeader(stepConfig.retryDelay ?? headers["cf-aig-retry-delay"], 0, MAX_RETRY_DELAY_MS) ?? 0,
    backoff: stepConfig.backoff ?? headers["cf-aig-backoff"] ?? "constant",
    timeoutMs: intHeader(stepConfig.requestTimeout ?? headers["cf-aig-request-timeout"], 0, Number.MAX_SAFE_INTEGER),
  };
}

/** Delay before retry number `retry` (1-based). The exact backoff formulas are UNCONFIRMED. */
export function retryDelay(policy, retry) {
  if (policy.backoff === "exponential") return policy.delayMs * 2 ** (retry - 1);
  if (policy.backoff === "linear") return policy.delayMs * retry;
  return policy.delayMs;
}
