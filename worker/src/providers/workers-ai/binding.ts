// Workers AI through the Worker's AI binding with the gateway named (cf-contract 4.1): the
// binding carries the account's own authority, so no API token is stored or sent, and the
// gateway options travel in the call (its wire body), not as cf-aig-* headers. The raw
// Response is asked for, so an error keeps its status instead of becoming an exception.

import { AI_BINDING } from "../../generated/contract";
import { UPSTREAM_TIMEOUT_MS } from "../../generated/settings";
import { HttpError } from "../../lib/errors";
import { cacheOptions, retriesOf, tenantMetadata } from "../gateway";
import type { UpstreamCall } from "../types";

export async function runOnBinding(call: UpstreamCall, inputs: Record<string, unknown>): Promise<Response> {
  const ai = call.env[AI_BINDING];
  if (!ai) {
    // provision/deploy/bindings.py declares the binding whenever the catalog has a Workers AI model
    throw new HttpError(500, `The Worker has no '${AI_BINDING}' binding for Workers AI models.`, {
      code: "internal_error",
    });
  }
  const cache = await cacheOptions(call, `workers-ai/${call.upstreamModel}`, JSON.stringify(inputs));
  const gateway: GatewayOptions = {
    id: call.env.GATEWAY_ID,
    metadata: tenantMetadata(call.principal, call.requestId),
    ...(cache ? { cacheKey: cache.key, cacheTtl: cache.ttl } : { skipCache: true }),
  };
  const retries = retriesOf(call.model);
  if (retries) {
    const { maxAttempts, retryDelayMs, backoff, requestTimeoutMs } = retries;
    gateway.retries = { maxAttempts, retryDelayMs, backoff } as GatewayRetries;
    if (requestTimeoutMs !== null) gateway.requestTimeoutMs = requestTimeoutMs;
  }
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), UPSTREAM_TIMEOUT_MS);
  try {
    // a stand-in while AI Gateway is down goes to Workers AI itself (no gateway option)
    const options = call.direct ? {} : { gateway };
    return await ai.run(call.upstreamModel, inputs, { ...options, returnRawResponse: true, signal: controller.signal });
  } catch {
    if (controller.signal.aborted) {
      throw new HttpError(504, `Workers AI did not answer within ${UPSTREAM_TIMEOUT_MS} ms.`, {
        code: "upstream_timeout",
      });
    }
    throw new HttpError(502, "Could not reach Workers AI through the AI binding.", { code: "upstream_unreachable" });
  } finally {
    clearTimeout(timer);
  }
}
