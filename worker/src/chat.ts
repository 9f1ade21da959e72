// POST /v1/chat/completions: validate, resolve the model, admit against quotas, forward through
// AI Gateway's OpenAI-compatible endpoint, stream the answer back without buffering, and
// settle the real cost after the response (ctx.waitUntil, never delaying the client).

import type { Context } from "hono";
import type { AppEnv, Price, Principal } from "./env";
import { HttpError } from "./errors";
import { MAX_OUTPUT_TOKENS } from "./generated/settings";
import { resolveModel } from "./models";
import { costMicros, customCostHeader, formatUsd, priceFor, type Tokens } from "./pricing";
import { admit, type Outcome, quotaHeaders, settle } from "./quota";
import { type ChatBody, chatBody, readJsonBody, validate } from "./schemas";
import { meterStream } from "./stream-meter";
import { fetchUpstream, gatewayHeaders, gatewayUrl, passthroughHeaders, upstreamError } from "./upstream";
import { estimatePromptTokens, estimateTokens, promptTokensBound, readUsage } from "./usage";

/**
 * What goes upstream: the resolved model, a bounded output (so the worst case is bounded), and
 * usage on streams. Returns the output-token bound over all `n` choices.
 */
function upstreamRequest(body: ChatBody, model: string): { request: Record<string, unknown>; maxOutput: number } {
  const request: Record<string, unknown> = { ...body, model };
  const maxOutput = body.max_completion_tokens ?? body.max_tokens ?? null;
  if (maxOutput === null) {
    // OpenAI's reasoning models refuse max_tokens; the compat endpoint maps max_tokens for others.
    request[model.startsWith("openai/") ? "max_completion_tokens" : "max_tokens"] = MAX_OUTPUT_TOKENS;
  }
  if (body.stream) request.stream_options = { ...body.stream_options, include_usage: true };
  return { request, maxOutput: (maxOutput ?? MAX_OUTPUT_TOKENS) * (body.n ?? 1) };
}

function isEventStream(response: Response): boolean {
  return (response.headers.get("content-type") ?? "").includes("text/event-stream");
}

interface Served {
  body: ChatBody;
  text: string;
  price: Price;
  cached: boolean;
}

/** What to record for a served request: reported usage, else an estimate from the text. */
export function outcomeOf(usage: Tokens | null, { body, text, price, cached }: Served): Outcome {
  const estimated = usage === null;
  const tokens = usage ?? { promptTokens: estimatePromptTokens(body), completionTokens: estimateTokens(text) };
  return {
    cost: cached ? 0 : costMicros(tokens, price), // an AI Gateway cache HIT costs nothing
    tokensIn: tokens.promptTokens,
    tokensOut: tokens.completionTokens,
    estimated,
    cached,
    count: true,
  };
}

const RELEASED: Outcome = { cost: 0, tokensIn: 0, tokensOut: 0, estimated: false, cached: false, count: false };

export async function chatCompletions(c: Context<AppEnv>): Promise<Response> {
  const env = c.env;
  const principal: Principal = c.get("principal");
  const requestId = c.get("requestId");
  const fault = c.get("fault");
  const body = validate(chatBody, await readJsonBody(c.req.raw));
  const model = resolveModel(body.model, principal.policy);
  const price = priceFor(model, principal.policy);
  const { request: upstreamBody, maxOutput } = upstreamRequest(body, model);
  const worstCase = costMicros({ promptTokens: promptTokensBound(body), completionTokens: maxOutput }, price);
  const ledgerStart = performance.now(); // advances across I/O only: this times the ledger call
  const admission = await admit(env, principal, requestId, worstCase, fault);
  const ledgerMs = performance.now() - ledgerStart;
  const settleWith = (outcome: Outcome) => settle(env, principal, requestId, admission, outcome, fault);

  let upstream: Response;
  try {
    const payload = JSON.stringify(upstreamBody);
    const provider = model.split("/", 1)[0] as string;
    const headers = await gatewayHeaders(env, principal, requestId, { provider, body: payload });
    headers["cf-aig-custom-cost"] = customCostHeader(price);
    upstream = await fetchUpstream(gatewayUrl(env, "compat/chat/completions"), {
      method: "POST",
      headers,
      body: payload,
    });
    if (!upstream.ok) throw await upstreamError(upstream);
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
    let text: string;
    try {
      text = await upstream.text();
    } catch {
      // The provider may already have billed the prompt: record an estimate, never nothing.
      c.executionCtx.waitUntil(settleWith(outcomeOf(null, { body, text: "", price, cached })));
      throw new HttpError(502, "The upstream answer broke off before it was complete.", {
        code: "upstream_incomplete",
      });
    }
    let usage: Tokens | null = null;
    try {
      usage = readUsage((JSON.parse(text) as { usage?: unknown }).usage);
    } catch {
      // not JSON: pass it on as it came; cost is estimated below
    }
    const outcome = outcomeOf(usage, { body, text, price, cached });
    c.executionCtx.waitUntil(settleWith(outcome));
    for (const [name, value] of Object.entries(quotaHeaders(principal, admission, outcome.cost))) out.set(name, value);
    out.set("x-gateway-cost-usd", formatUsd(outcome.cost));
    return new Response(text, { status: upstream.status, headers: out });
  }

  const clientWantsUsage = body.stream_options?.include_usage === true;
  const { stream, done } = meterStream(upstream.body, { clientWantsUsage, signal: c.req.raw.signal });
  c.executionCtx.waitUntil(done.then(({ usage, text }) => settleWith(outcomeOf(usage, { body, text, price, cached }))));
  for (const [name, value] of Object.entries(quotaHeaders(principal, admission))) out.set(name, value);
  return new Response(stream, { status: upstream.status, headers: out });
}
