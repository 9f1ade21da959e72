// The one policy path every model route takes (worker/src/routes.ts builds the routes from
// provision/contract.py's table): the key was authenticated by the route's middleware; here
// the model is resolved and checked against the allow-lists, the worst case is admitted
// against the user's limit and the org's budget, the exchange goes upstream (with the
// Worker's credentials, tenant metadata, custom cost and tenant-scoped caching: providers/),
// the answer goes back (streams unbuffered), and the real cost is settled after the response.
// Routes differ only in how they read the model, build the upstream request, and read usage.

import type { Context } from "hono";
import type { AppEnv } from "./env";
import { HttpError } from "./errors";
import { type Bound, outcomeOf, type Subject } from "./outcome";
import { formatUsd } from "./pricing";
import type { Metered, MeteredStream, UpstreamCall } from "./providers/types";
import { admit, type Granted, type Outcome, quotaHeaders, settle } from "./quota";
import { passthroughHeaders } from "./upstream";

/** One upstream exchange, as a route builds it for its model. */
export interface Exchange {
  call: UpstreamCall;
  /** The most it can use and cost (reserved before sending). */
  bound: Bound;
  /** The prompt's tokens as estimated here, used when no usage comes back. */
  estimatedPromptTokens: number;
  /** false: authorised and logged, never charged (Anthropic's free count_tokens). */
  metered: boolean;
  send(): Promise<Response>;
  /** A non-2xx upstream answer → the error the client sees (in the route's shape). */
  error(response: Response): Promise<HttpError>;
  /** A complete answer → what the client gets, and its usage. */
  answer(raw: string): { text: string; usage: Metered["usage"]; contentType?: string };
  /** An upstream stream → what the client gets, metered. */
  stream(upstream: ReadableStream<Uint8Array>): MeteredStream;
}

const RELEASED: Outcome = { cost: 0, tokensIn: 0, tokensOut: 0, estimated: false, cached: false, count: false };
const FREE: Granted = { month: "", amount: 0, state: null, degraded: false };

function isEventStream(response: Response): boolean {
  return (response.headers.get("content-type") ?? "").includes("text/event-stream");
}

export async function serve(c: Context<AppEnv>, exchange: Exchange): Promise<Response> {
  const { call, bound } = exchange;
  const { env, principal, requestId } = call;
  const fault = c.get("fault");
  const subject: Subject = {
    requestId,
    model: call.model,
    price: call.price,
    estimatedPromptTokens: exchange.estimatedPromptTokens,
  };

  const ledgerStart = performance.now(); // advances across I/O only: this times the ledger call
  const admission = exchange.metered ? await admit(env, principal, requestId, bound.micros, fault) : FREE;
  const ledgerMs = performance.now() - ledgerStart;
  const settleWith = (outcome: Outcome): Promise<unknown> =>
    exchange.metered ? settle(env, principal, requestId, admission, outcome, fault) : Promise.resolve();
  const charged = (outcome: Outcome): Record<string, string> =>
    exchange.metered
      ? { ...quotaHeaders(principal, admission, outcome.cost), "x-gateway-cost-usd": formatUsd(outcome.cost) }
      : {};

  let upstream: Response;
  try {
    upstream = await exchange.send();
    if (!upstream.ok) throw await exchange.error(upstream);
  } catch (err) {
    c.executionCtx.waitUntil(settleWith(RELEASED)); // nothing was served: give the reservation back
    throw err;
  }

  const cached = upstream.headers.get("cf-aig-cache-status") === "HIT";
  const out = passthroughHeaders(upstream);
  out.set("x-gateway-model", call.model);
  out.set("server-timing", `ledger;dur=${ledgerMs.toFixed(2)}`);

  // Decide by what came back, not by what was asked: AI Gateway may answer a stream request
  // with one buffered JSON body (e.g. when guardrails inspect the response).
  if (!isEventStream(upstream) || upstream.body === null) {
    let raw: string;
    try {
      raw = await upstream.text();
    } catch {
      // The provider may already have billed the prompt: record an estimate, never nothing.
      const outcome = outcomeOf({ usage: null, text: "", complete: false }, subject, cached, bound);
      c.executionCtx.waitUntil(settleWith(outcome));
      throw new HttpError(502, "The upstream answer broke off before it was complete.", {
        code: "upstream_incomplete",
        headers: charged(outcome),
      });
    }
    const { text, usage, contentType } = exchange.answer(raw);
    const outcome = outcomeOf({ usage, text, complete: true }, subject, cached, bound);
    c.executionCtx.waitUntil(settleWith(outcome));
    for (const [name, value] of Object.entries(charged(outcome))) out.set(name, value);
    if (contentType) out.set("content-type", contentType);
    else if (text !== raw) out.set("content-type", "application/json");
    return new Response(text, { status: upstream.status, headers: out });
  }

  const { stream, done } = exchange.stream(upstream.body);
  c.executionCtx.waitUntil(done.then((metered) => settleWith(outcomeOf(metered, subject, cached, bound))));
  if (exchange.metered) {
    for (const [name, value] of Object.entries(quotaHeaders(principal, admission))) out.set(name, value);
  }
  return new Response(stream, { status: upstream.status, headers: out });
}
