// What every route handler needs for its model: the upstream call and the admitted bound.

import type { Context } from "hono";
import type { Bound } from "../budget/outcome";
import { NO_EXTRAS, type Requested, worstExtraMicros } from "../pricing/extras";
import { contextWindowOf, priceFor, worstCaseMicros } from "../pricing/prices";
import type { JsonBody } from "../protocol/bodies";
import type { AppEnv } from "../protocol/env";
import type { UpstreamCall } from "../providers";
import { readJsonBody } from "../request/body";
import { providerSlug } from "../request/models";

const MAX_LOGGED_PROMPT_CHARS = 16_384; // a prompt in a log line is cut here (logPrompts)

/** The request's JSON body; kept (capped) for the log line when the key's org opted in. */
export function requestBody(c: Context<AppEnv>): Promise<JsonBody> {
  const trace = c.get("trace");
  const keep =
    trace && c.get("principal").policy.logPrompts
      ? (text: string) => {
          trace.prompt = text.slice(0, MAX_LOGGED_PROMPT_CHARS);
        }
      : undefined;
  return readJsonBody(c.req.raw, keep);
}

/** The call to `model`'s provider on behalf of this request's principal. */
export function upstreamCall(c: Context<AppEnv>, model: string, upstreamModel?: string): UpstreamCall {
  const principal = c.get("principal");
  const provider = providerSlug(model);
  return {
    env: c.env,
    principal,
    requestId: c.get("requestId"),
    route: c.req.routePath,
    model,
    provider,
    upstreamModel: upstreamModel ?? model.slice(provider.length + 1),
    price: priceFor(model, principal.policy),
    signal: c.req.raw.signal,
    ...(principal.policy.clientCacheControl ? { clientCache: clientCache(c.req.raw.headers) } : {}),
  };
}

const MAX_CLIENT_TTL_S = 2_592_000; // AI Gateway's own maximum (30 days)

/** The client's cf-aig-skip-cache / cf-aig-cache-ttl, read only for orgs that allow them. */
function clientCache(headers: Headers): { skip: boolean; ttl: number | null } {
  const ttl = Number.parseInt(headers.get("cf-aig-cache-ttl") ?? "", 10);
  return {
    skip: headers.get("cf-aig-skip-cache") === "true",
    ttl: Number.isFinite(ttl) && ttl >= 0 ? Math.min(ttl, MAX_CLIENT_TTL_S) : null,
  };
}

/** Every prompt token at the dearest input price, every output token at the output price, and
 * what the request may spend beyond tokens (its billed tools' bounds, its tier). */
export function boundOf(
  call: UpstreamCall,
  promptTokens: number,
  completionTokens: number,
  asked: Requested = NO_EXTRAS,
): Bound {
  // a provider refuses (unbilled) a prompt above its model's window: the prompt's bound stops
  // there; what billed tools read in beyond the prompt comes on top
  const window = contextWindowOf(call.model);
  const prompt = (window === null ? promptTokens : Math.min(promptTokens, window)) + asked.inputTokens;
  const tokens = worstCaseMicros(prompt, completionTokens, call.price, asked.hourCache !== undefined);
  return { promptTokens: prompt, completionTokens, micros: tokens + worstExtraMicros(tokens, asked) };
}
