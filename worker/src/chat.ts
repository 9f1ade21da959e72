// POST /v1/chat/completions: validate, resolve the model, admit against quotas, send through the
// model's provider module (worker/src/providers/), return the answer in OpenAI's shape (streams
// unbuffered), and settle the real cost after the response (waitUntil, never delaying the client).

import type { Context } from "hono";
import type { AppEnv, Principal } from "./env";
import { HttpError } from "./errors";
import { MAX_OUTPUT_TOKENS } from "./generated/settings";
import { resolveModel } from "./models";
import { type Bound, outcomeOf } from "./outcome";
import { formatUsd, priceFor, worstCaseMicros } from "./pricing";
import { providerOf } from "./providers";
import type { ChatCall } from "./providers/types";
import { admit, type Outcome, quotaHeaders, settle } from "./quota";
import { chatBody, readJsonBody, validate } from "./schemas";
import { passthroughHeaders } from "./upstream";
import { promptTokensBound } from "./usage";

function isEventStream(response: Response): boolean {
  return (response.headers.get("content-type") ?? "").includes("text/event-stream");
}

const RELEASED: Outcome = { cost: 0, tokensIn: 0, tokensOut: 0, estimated: false, cached: false, count: false };

export async function chatCompletions(c: Context<AppEnv>): Promise<Response> {
  const env = c.env;
  const principal: Principal = c.get("principal");
  const requestId = c.get("requestId");
  const fault = c.get("fault");
  const body = validate(chatBody, await readJsonBody(c.req.raw));
  const model = resolveModel(body.model, principal.policy);
  const { slug, upstreamModel, provider } = providerOf(model);
  const maxTokens = body.max_completion_tokens ?? body.max_tokens ?? MAX_OUTPUT_TOKENS;
  const call: ChatCall = {
    env,
    principal,
    requestId,
    model,
    upstreamModel,
    provider: slug,
    body,
    maxTokens,
    price: priceFor(model, principal.policy),
    signal: c.req.raw.signal,
  };
  // The bound of what this request can cost: every prompt token at the dearest input price,
  // and the full output of every choice.
  const promptTokens = promptTokensBound(body);
  const completionTokens = maxTokens * (body.n ?? 1);
  const bound: Bound = {
    promptTokens,
    completionTokens,
    micros: worstCaseMicros(promptTokens, completionTokens, call.price),
  };
  const ledgerStart = performance.now(); // advances across I/O only: this times the ledger call
  const admission = await admit(env, principal, requestId, bound.micros, fault);
  const ledgerMs = performance.now() - ledgerStart;
  const settleWith = (outcome: Outcome) => settle(env, principal, requestId, admission, outcome, fault);

  let upstream: Response;
  try {
    upstream = await provider.send(call);
    if (!upstream.ok) throw await provider.error(upstream);
  } catch (err) {
    c.executionCtx.waitUntil(settleWith(RELEASED)); // nothing was served: give the reservation back
    throw err;
  }

  const cached = upstream.headers.get("cf-aig-cache-status") === "HIT";
  const out = passthroughHeaders(upstream);
  out.set("x-gateway-model", model);
  out.set("server-timing", `ledger;dur=${ledgerMs.toFixed(2)}`);

  // Decide by what came back, not by what was asked: AI Gateway may answer a stream request
  // with one buffered JSON body (e.g. when guardrails inspect the response).
  if (!isEventStream(upstream) || upstream.body === null) {
    let raw: string;
    try {
      raw = await upstream.text();
    } catch {
      // The provider may already have billed the prompt: record an estimate, never nothing.
      c.executionCtx.waitUntil(settleWith(outcomeOf(null, call, "", cached, bound)));
      throw new HttpError(502, "The upstream answer broke off before it was complete.", {
        code: "upstream_incomplete",
      });
    }
    const { text, usage } = provider.completion(raw, call);
    const outcome = outcomeOf(usage, call, text, cached, bound);
    c.executionCtx.waitUntil(settleWith(outcome));
    for (const [name, value] of Object.entries(quotaHeaders(principal, admission, outcome.cost))) out.set(name, value);
    out.set("x-gateway-cost-usd", formatUsd(outcome.cost));
    if (text !== raw) out.set("content-type", "application/json");
    return new Response(text, { status: upstream.status, headers: out });
  }

  const clientWantsUsage = body.stream_options?.include_usage === true;
  const { stream, done } = provider.stream(upstream.body, call, { clientWantsUsage });
  c.executionCtx.waitUntil(done.then(({ usage, text }) => settleWith(outcomeOf(usage, call, text, cached, bound))));
  for (const [name, value] of Object.entries(quotaHeaders(principal, admission))) out.set(name, value);
  return new Response(stream, { status: upstream.status, headers: out });
}
