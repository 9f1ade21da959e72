// The AI Gateway side: where a request goes, with which headers, and how an upstream failure
// becomes one OpenAI-shaped error. The client's own Authorization header never goes upstream.

import { sha256Hex } from "./auth";
import type { Env, Principal } from "./env";
import { HttpError } from "./errors";
import { PROVIDER_KEY_PREFIX } from "./generated/contract";
import { UPSTREAM_TIMEOUT_MS } from "./generated/settings";

const METADATA_LIMIT = 5; // AI Gateway keeps only the first five metadata entries

export function gatewayUrl(env: Env, path: string): string {
  const base = env.AI_GATEWAY_BASE_URL.replace(/\/+$/, "");
  return `${base}/${env.ACCOUNT_ID}/${env.GATEWAY_ID}/${path}`;
}

/** The provider's key from the Worker's secrets (provision/contract.py provider_key_binding). */
export function providerKey(env: Env, provider: string): string | undefined {
  return env[`${PROVIDER_KEY_PREFIX}${provider.toUpperCase().replaceAll("-", "_")}`];
}

/** Headers for AI Gateway: gateway auth, tenant metadata, caching; provider key unless BYOK. */
export async function gatewayHeaders(
  env: Env,
  principal: Principal,
  requestId: string,
  { provider, body }: { provider: string; body: string },
): Promise<Record<string, string>> {
  const metadata = {
    requestId,
    userId: principal.userId,
    orgId: principal.orgId,
    keyId: principal.keyId,
  };
  const headers: Record<string, string> = {
    "content-type": "application/json",
    "cf-aig-metadata": JSON.stringify(Object.fromEntries(Object.entries(metadata).slice(0, METADATA_LIMIT))),
  };
  if (env.AI_GATEWAY_TOKEN) headers["cf-aig-authorization"] = `Bearer ${env.AI_GATEWAY_TOKEN}`;
  const key = providerKey(env, provider);
  if (key) headers.authorization = `Bearer ${key}`;
  // AI Gateway's cache key ignores metadata, so tenants with identical bodies would share
  // answers: cache only under a tenant-scoped key, and skip the cache otherwise.
  const ttl = principal.policy.cacheTtl;
  if (ttl > 0) {
    headers["cf-aig-cache-key"] = `${principal.orgId}:${await sha256Hex(body)}`;
    headers["cf-aig-cache-ttl"] = String(ttl);
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

/** Any non-2xx upstream answer → the HttpError the client should see. */
interface UpstreamErrorBody {
  name?: string;
  internalCode?: number;
  description?: string;
  message?: string;
  error?:
    | string
    | { message?: string; type?: string; code?: string | null; param?: string | null }
    | { code?: number; message?: string }[];
}

export async function upstreamError(response: Response): Promise<HttpError> {
  const text = await response.text();
  let body: UpstreamErrorBody | null = null;
  try {
    body = JSON.parse(text) as UpstreamErrorBody;
  } catch {
    // not JSON: keep the status, describe it generically below
  }
  const status = response.status;
  if (body && body.name === "AiGatewayError") {
    const first = Array.isArray(body.error) ? body.error[0] : undefined;
    const code = body.internalCode ?? first?.code;
    const message = body.description ?? first?.message ?? "unknown error";
    if (code === 2003) {
      return new HttpError(429, `AI Gateway rate limit reached: ${message}`, { code: "gateway_rate_limited" });
    }
    return new HttpError(502, `AI Gateway rejected the request (code ${code}): ${message}`, {
      code: "gateway_error",
    });
  }
  if (status === 401 || status === 403) {
    // The provider refused OUR credentials: a gateway configuration problem, not the client's.
    return new HttpError(502, "The model provider rejected the gateway's credentials.", {
      code: "provider_auth_error",
    });
  }
  const message = providerMessage(body) ?? `The model provider answered HTTP ${status}.`;
  if (status >= 500) return new HttpError(502, `Upstream provider error: ${message}`, { code: "upstream_error" });
  const detail = body?.error && typeof body.error === "object" && !Array.isArray(body.error) ? body.error : undefined;
  return new HttpError(status, message, {
    type: detail?.type,
    code: detail?.code ?? null,
    param: detail?.param ?? null,
  });
}

function providerMessage(body: UpstreamErrorBody | null): string | null {
  if (!body) return null;
  if (typeof body.error === "string") return body.error;
  const detail = body.error && !Array.isArray(body.error) ? body.error : undefined;
  return detail?.message ?? body.message ?? null;
}

/** Upstream response headers a client may see: content type and AI Gateway's cf-aig-*. */
export function passthroughHeaders(upstream: Response): Headers {
  const headers = new Headers();
  for (const [name, value] of upstream.headers) {
    if (name === "content-type" || name.startsWith("cf-aig-")) headers.set(name, value);
  }
  return headers;
}
