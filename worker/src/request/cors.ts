// CORS, per organization (stack: tenants.organizations[].corsOrigins; none by default). A
// preflight carries no key, so it is answered for any origin some org allows; the request
// itself, once its key is known, only for its own org's origins. Other origins are refused.

import type { Context } from "hono";
import { CORS_ORIGINS } from "../generated/settings";
import { HttpError } from "../lib/errors";
import type { AppEnv } from "../protocol/env";
import type { Principal } from "../protocol/policy";

const KNOWN = new Set(CORS_ORIGINS);
const MAX_AGE_S = 600;
// What a browser client may read besides the CORS-safelisted headers: ids, model, usage, limits.
const EXPOSED = [
  "x-request-id",
  "x-gateway-model",
  "x-gateway-attempts",
  "x-gateway-fallback",
  "x-gateway-cost-usd",
  "x-gateway-usage-usd",
  "x-gateway-limit-usd",
  "x-gateway-remaining-usd",
  "x-gateway-limit-scope",
  "x-gateway-quota-resets-at",
  "x-gateway-degraded",
  "x-ratelimit-limit-requests",
  "x-ratelimit-remaining-requests",
  "x-ratelimit-reset-requests",
  "retry-after",
].join(", ");

function refused(origin: string): HttpError {
  return new HttpError(403, `Requests from the origin '${origin}' are not allowed for this organization.`, {
    code: "origin_not_allowed",
  });
}

/** A CORS preflight (OPTIONS with Origin and Access-Control-Request-Method), or null. */
export function preflight(request: Request): Response | null {
  const origin = request.headers.get("origin");
  if (request.method !== "OPTIONS" || origin === null || !request.headers.has("access-control-request-method")) {
    return null;
  }
  if (!KNOWN.has(origin)) throw refused(origin);
  const headers = new Headers({
    "access-control-allow-origin": origin,
    "access-control-allow-methods": "GET, POST",
    "access-control-max-age": String(MAX_AGE_S),
    vary: "Origin",
  });
  const asked = request.headers.get("access-control-request-headers");
  if (asked) headers.set("access-control-allow-headers", asked);
  return new Response(null, { status: 204, headers });
}

/** A request from a browser origin: refused unless the key's org allows it. */
export function checkOrigin(c: Context<AppEnv>, principal: Principal): string | null {
  const origin = c.req.header("origin");
  if (origin === undefined) return null;
  if (!principal.policy.corsOrigins.includes(origin)) throw refused(origin);
  return origin;
}

/** The CORS headers of an allowed origin's response. */
export function allowOrigin(response: Response, origin: string): void {
  response.headers.set("access-control-allow-origin", origin);
  response.headers.set("access-control-expose-headers", EXPOSED);
  response.headers.append("vary", "Origin");
}
