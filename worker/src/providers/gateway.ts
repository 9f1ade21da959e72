// The AI Gateway side shared by every HTTP provider: the provider-native URL, the headers
// (gateway auth, tenant metadata, tenant-scoped caching, the provider's key unless stored on
// the gateway), a time-to-first-byte bound, and AI Gateway's own error envelope. The client's
// own key never goes upstream: headers are built here from the Worker's secrets only.

import { PROVIDER_KEY_PREFIX } from "../generated/contract";
import { BYOK_ALIASES, RETRIES, UPSTREAM_TIMEOUT_MS } from "../generated/settings";
import { HttpError } from "../lib/errors";
import { sha256Hex } from "../lib/hex";
import { customCostHeader } from "../pricing/prices";
import type { Env } from "../protocol/env";
import type { Principal } from "../protocol/policy";
import type { UpstreamCall } from "./types";

const METADATA_LIMIT = 5; // AI Gateway keeps only the first five metadata entries

/** `{base}/{account}/{gateway}/{path}`: a provider-native AI Gateway endpoint. */
export function gatewayUrl(env: Env, path: string): string {
  const base = env.AI_GATEWAY_BASE_URL.replace(/\/+$/, "");
  return `${base}/${env.ACCOUNT_ID}/${env.GATEWAY_ID}/${path}`;
}

/** The provider's key from the Worker's secrets (provision/stack/contract.py provider_key_binding). */
export function providerKey(env: Env, provider: string): string | undefined {
  return env[`${PROVIDER_KEY_PREFIX}${provider.toUpperCase().replaceAll("-", "_")}`];
}

/** Who is calling, as AI Gateway logs it (cf-aig-metadata; also the binding's metadata). */
export function tenantMetadata(principal: Principal, requestId: string): Record<string, string> {
  const metadata = { requestId, userId: principal.userId, orgId: principal.orgId, keyId: principal.keyId };
  return Object.fromEntries(Object.entries(metadata).slice(0, METADATA_LIMIT));
}

/** AI Gateway's own retries for a model, as the stack declares them (routing.retries). */
export function retriesOf(model: string): (typeof RETRIES)[string] | undefined {
  return Object.hasOwn(RETRIES, model) ? RETRIES[model] : undefined;
}

/**
 * AI Gateway's cache key ignores metadata, so tenants with identical bodies would share
 * answers: cache only under a tenant-scoped key that also carries the policy's version (a
 * changed allow-list or alias never meets an old answer), the client's route, the provider's
 * endpoint and the model (a body that names no model, as a Workers AI binding call's inputs,
 * never meets another model's answer), and skip the cache otherwise. The org's TTL, or the
 * client's own headers where the org lets clients decide.
 */
export async function cacheOptions(
  call: UpstreamCall,
  endpoint: string,
  body: string,
): Promise<{ key: string; ttl: number } | null> {
  const { principal, clientCache } = call;
  if (clientCache?.skip || call.uncacheable) return null;
  const ttl = clientCache?.ttl ?? principal.policy.cacheTtl;
  if (ttl <= 0) return null;
  const scope = [principal.orgId, principal.policy.version, call.route, endpoint, call.model].join(" ");
  return { key: `${principal.orgId}:${principal.policy.version}:${await sha256Hex(`${scope}\n${body}`)}`, ttl };
}

/** Headers for AI Gateway; `auth` is the provider's own key header (none: keys stored on the gateway). */
export async function gatewayHeaders(call: UpstreamCall, path: string, body: string, auth: Record<string, string>) {
  const headers: Record<string, string> = {
    "content-type": "application/json",
    "cf-aig-metadata": JSON.stringify(tenantMetadata(call.principal, call.requestId)),
    "cf-aig-custom-cost": customCostHeader(call.price),
    ...auth,
  };
  if (call.env.AI_GATEWAY_TOKEN) headers["cf-aig-authorization"] = `Bearer ${call.env.AI_GATEWAY_TOKEN}`;
  // a key stored on the gateway, by name, when the Worker holds none for the provider
  const alias = Object.hasOwn(BYOK_ALIASES, call.provider) ? BYOK_ALIASES[call.provider] : undefined;
  if (alias && !providerKey(call.env, call.provider)) headers["cf-aig-byok-alias"] = alias;
  const retries = retriesOf(call.model);
  if (retries) {
    headers["cf-aig-max-attempts"] = String(retries.maxAttempts);
    headers["cf-aig-retry-delay"] = String(retries.retryDelayMs);
    headers["cf-aig-backoff"] = retries.backoff;
    if (retries.requestTimeoutMs !== null) headers["cf-aig-request-timeout"] = String(retries.requestTimeoutMs);
  }
  const cache = await cacheOptions(call, path, body);
  if (cache) {
    headers["cf-aig-cache-key"] = cache.key;
    headers["cf-aig-cache-ttl"] = String(cache.ttl);
  } else {
    headers["cf-aig-skip-cache"] = "true";
  }
  return headers;
}

/** fetch with a time-to-first-byte bound; network failure → 502, timeout → 504. */
export async function fetchUpstream(url: string, init: RequestInit): Promise<Response> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), UPSTREAM_TIMEOUT_MS);
  try {
    return await fetch(url, { ...init, signal: controller.signal });
  } catch {
    if (controller.signal.aborted) {
      throw new HttpError(504, `AI Gateway did not answer within ${UPSTREAM_TIMEOUT_MS} ms.`, {
        code: "upstream_timeout",
      });
    }
    throw new HttpError(502, "Could not reach AI Gateway.", { code: "upstream_unreachable" });
  } finally {
    clearTimeout(timer);
  }
}

/** POST a JSON body to a provider-native endpoint with the gateway's headers. */
export async function postToGateway(call: UpstreamCall, path: string, payload: unknown, auth: Record<string, string>) {
  const body = JSON.stringify(payload);
  const headers = await gatewayHeaders(call, path, body, auth);
  return fetchUpstream(gatewayUrl(call.env, path), { method: "POST", headers, body });
}

interface GatewayErrorBody {
  name?: unknown;
  internalCode?: unknown;
  description?: unknown;
  error?: unknown;
}

/** AI Gateway's own error (`{"name": "AiGatewayError", ...}`) as ours, or null if it is not one. */
export function gatewayError(body: unknown): HttpError | null {
  const b = body as GatewayErrorBody | null;
  if (!b || typeof b !== "object" || b.name !== "AiGatewayError") return null;
  const first = Array.isArray(b.error) ? (b.error[0] as { code?: unknown; message?: unknown } | undefined) : undefined;
  const code = b.internalCode ?? first?.code;
  const message = cleanMessage(String(b.description ?? first?.message ?? "unknown error"));
  if (code === 2003)
    return new HttpError(429, `AI Gateway rate limit reached: ${message}`, { code: "gateway_rate_limited" });
  // Guardrails blocked the prompt or the response: a refusal of this content, never an outage
  // (no fallback, no stand-in may answer what the gateway's own policy refused).
  if (code === 2016 || code === 2017)
    return new HttpError(
      400,
      `AI Gateway's guardrails blocked the ${code === 2016 ? "prompt" : "response"}: ${message}`,
      {
        code: "content_blocked",
      },
    );
  // The request timeout elapsed before the provider answered (the code itself is undocumented;
  // the envelope's httpCode says 504): a timeout, not a gateway fault.
  if ((b as { httpCode?: unknown }).httpCode === 504)
    return new HttpError(504, `The provider did not answer in time (AI Gateway code ${String(code)}): ${message}`, {
      code: "upstream_timeout",
    });
  return new HttpError(502, `AI Gateway rejected the request (code ${String(code)}): ${message}`, {
    code: "gateway_error",
  });
}

/** The provider refused OUR credentials: a gateway configuration problem, not the client's. */
export function credentialsError(): HttpError {
  return new HttpError(502, "The model provider rejected the gateway's credentials.", { code: "provider_auth_error" });
}

// What an upstream error message must not carry to a client: credentials (a provider's key, a
// gateway key, a bearer token, a JWT) and the infrastructure behind the gateway (URLs, network
// addresses, account and request ids: long hex). The provider's words around them stay.
const SECRET_PATTERNS = [
  /\bsk-[A-Za-z0-9_-]{8,}/g,
  /\bgw_(?:live|test)_[A-Za-z0-9_-]+/g,
  /\b(?:Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/gi,
  /\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*/g,
  /\bAIza[0-9A-Za-z_-]{20,}/g, // a Google API key
];
const INFRASTRUCTURE_PATTERNS: [RegExp, string][] = [
  [/\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>)]+/gi, "<url>"],
  [/\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b/g, "<address>"],
  [/\b[0-9a-f]{32,}\b/gi, "<id>"],
];
const MAX_MESSAGE_CHARS = 1_000;

/** An upstream error's message as a client may see it: no secrets, no infrastructure, bounded. */
export function cleanMessage(message: string): string {
  let out = message;
  for (const pattern of SECRET_PATTERNS) out = out.replace(pattern, "<redacted>");
  for (const [pattern, word] of INFRASTRUCTURE_PATTERNS) out = out.replace(pattern, word);
  return out.length > MAX_MESSAGE_CHARS ? `${out.slice(0, MAX_MESSAGE_CHARS)}…` : out;
}

/** An error body's JSON, or null when it is not JSON. */
export async function errorJson(response: Response): Promise<unknown> {
  const text = await response.text();
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
