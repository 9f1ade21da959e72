// POST /v1/chat/completions: validate, resolve the model, admit against quotas, forward through
// AI Gateway's OpenAI-compatible endpoint, stream the answer back without buffering, and
// settle the real cost after the response (ctx.waitUntil, never delaying the client).

import { HttpError } from "./errors.js";
import { resolveModel } from "./models.js";
import { costMicros, customCostHeader, formatUsd, priceFor } from "./pricing.js";
import { admit, quotaHeaders, settle } from "./quota.js";
import { MAX_OUTPUT_TOKENS } from "./settings.js";
import { injectedFault } from "./testhooks.js";
import { fetchUpstream, gatewayHeaders, gatewayUrl, passthroughHeaders, upstreamError } from "./upstream.js";
import { estimatePromptTokens, estimateTokens, meterStream, promptTokensBound, readUsage } from "./usage.js";

export async function readJsonBody(request) {
  let body;
  try {
    body = await request.json();
  } catch {
    throw new HttpError(400, "We could not parse the JSON body of your request.", { code: "invalid_json" });
  }
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw new HttpError(400, "The request body must be a JSON object.", { code: "invalid_json" });
  }
  return body;
}

function validateChat(body) {
  if (!Array.isArray(body.messages) || body.messages.length === 0) {
    throw new HttpError(400, "'messages' is required and must be a non-empty array.", {
      param: "messages",
      code: "missing_required_parameter",
    });
  }
  if (body.stream !== undefined && typeof body.stream !== "boolean") {
    throw new HttpError(400, "'stream' must be a boolean.", { param: "stream", code: "invalid_type" });
  }
  for (const param of ["max_tokens", "max_completion_tokens", "n"]) {
    const value = body[param];
    if (value !== undefined && value !== null && !(Number.isInteger(value) && value > 0)) {
      throw new HttpError(400, `'${param}' must be a positive integer.`, { param, code: "invalid_type" });
    }
  }
}

/**
 * What goes upstream: the resolved model, a bounded output (so the worst case is bounded), and
 * usage on streams. Returns the output-token bound over all `n` choices.
 */
function upstreamRequest(body, model) {
  const request = { ...body, model };
  const maxOutput = body.max_completion_tokens ?? body.max_tokens ?? null;
  if (maxOutput === null) {
    // OpenAI's reasoning models refuse max_tokens; the compat endpoint maps max_tokens for others.
    request[model.startsWith("openai/") ? "max_completion_tokens" : "max_tokens"] = MAX_OUTPUT_TOKENS;
  }
  if (body.stream) request.stream_options = { ...body.stream_options, include_usage: true };
  return { request, maxOutput: (maxOutput ?? MAX_OUTPUT_TOKENS) * (body.n ?? 1) };
}

function isEventStream(response) {
  return (response.headers.get("content-type") ?? "").includes("text/event-stream");
}

/** What to record for a served request: reported usage, else an estimate from the text. */
function outcomeOf(usage, { body, text, price, cached }) {
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

const RELEASED = { cost: 0, tokensIn: 0, tokensOut: 0, estimated: false, cached: false, count: false };

export async function chatCompletions(request, env, principal, requestId, ctx) {
  const body = await readJsonBody(request);
  validateChat(body);
  const model = resolveModel(body.model, principal.policy);
  const price = priceFor(model, principal.policy);
  const fault = injectedFault(request);
  const { request: upstreamBody, maxOutput } = upstreamRequest(body, model);
  const worstCase = costMicros({ promptTokens: promptTokensBound(body), completionTokens: maxOutput }, price);
  const ledgerStart = performance.now(); // advances across I/O only: this times the ledger call
  const admission = await admit(env, principal, requestId, worstCase, fault);
  const ledgerMs = performance.now() - ledgerStart;
  const settleWith = (outcome) => settle(env, principal, requestId, admission, outcome, fault);

  let upstream;
  try {
    const payload = JSON.stringify(upstreamBody);
    const headers = await gatewayHeaders(env, principal, requestId, { provider: model.split("/", 1)[0], body: payload });
    headers["cf-aig-custom-cost"] = customCostHeader(price);
    upstream = await fetchUpstream(gatewayUrl(env, "compat/chat/completions"), { method: "POST", headers, body: payload });
    if (!upstream.ok) throw await upstreamError(upstream);
  } catch (err) {
    ctx.waitUntil(settleWith(RELEASED)); // nothing was served: give the reservation back
    throw err;
  }

  const cached = upstream.headers.get("cf-aig-cache-status") === "HIT";
  const out = passthroughHeaders(upstream);
  out.set("x-gateway-model", model);
  out.set("server-timing", `ledger;dur=${ledgerMs.toFixed(2)}`);

  // Decide by what came back, not by what was asked: AI Gateway may answer a stream request
  // with one buffered JSON body (e.g. when guardrails inspect the response).
  if (!isEventStream(upstream)) {
    let text;
    try {
      text = await upstream.text();
    } catch {
      // The provider may already have billed the prompt: record an estimate, never nothing.
      ctx.waitUntil(settleWith(outcomeOf(null, { body, text: "", price, cached })));
      throw new HttpError(502, "The upstream answer broke off before it was complete.", {
        code: "upstream_incomplete",
      });
    }
    let usage = null;
    try {
      usage = readUsage(JSON.parse(text).usage);
    } catch {
      // not JSON: pass it on as it came; cost is estimated below
    }
    const outcome = outcomeOf(usage, { body, text, price, cached });
    ctx.waitUntil(settleWith(outcome));
    for (const [name, value] of Object.entries(quotaHeaders(principal, admission, outcome.cost))) out.set(name, value);
    out.set("x-gateway-cost-usd", formatUsd(outcome.cost));
    return new Response(text, { status: upstream.status, headers: out });
  }

  const clientWantsUsage = body.stream_options?.include_usage === true;
  const { stream, done } = meterStream(upstream.body, { clientWantsUsage, signal: request.signal });
  ctx.waitUntil(done.then(({ usage, text }) => settleWith(outcomeOf(usage, { body, text, price, cached }))));
  for (const [name, value] of Object.entries(quotaHeaders(principal, admission))) out.set(name, value);
  return new Response(stream, { status: upstream.status, headers: out });
}
