// The one policy path every model route takes (worker/src/routes/ builds the routes from
// provision/stack/contract.py's table): the key was authenticated by the route's middleware; here
// its rate tier is checked, then for each model of the request's chain (its model, then its
// fallbacks: worker/src/request/models.ts attemptsFor) the worst case is admitted against the user's
// limit and the org's budget and the exchange goes upstream (with the Worker's credentials,
// tenant metadata, custom cost and tenant-scoped caching: providers/). A retryable failure
// before the first byte reaches the client releases that attempt and tries the next model;
// the answer goes back (streams unbuffered), and the real cost is settled after the response.
// Routes differ only in how they read the model, build the upstream request, and read usage.

import type { Context } from "hono";
import { askFor, capWithin, type OutputCap } from "../budget/clamp";
import { type Bound, outcomeOf, type Subject, worstCaseOutcome } from "../budget/outcome";
import { admit, type Granted, quotaHeaders, settle } from "../budget/quota";
import { newTrace } from "../facts/facts";
import { RATE_TIERS } from "../generated/settings";
import { ledgerFor } from "../ledger";
import { HttpError } from "../lib/errors";
import { formatUsd } from "../lib/money";
import type { AppEnv } from "../protocol/env";
import type { Outcome } from "../protocol/outcome";
import type { Principal } from "../protocol/policy";
import type { Trace } from "../protocol/trace";
import type { Answer, MeteredStream, UpstreamCall } from "../providers";
import { passthroughHeaders } from "./upstream";

/** One upstream exchange, as a route builds it for one model. */
export interface Exchange {
  call: UpstreamCall;
  /** The most it can use and cost (reserved before sending). */
  bound: Bound;
  /** Its output cap, when the gateway may lower it to fit a budget (budget/clamp.ts). */
  outputCap?: OutputCap<Exchange>;
  /** The prompt's tokens as estimated here, used when no usage comes back. */
  estimatedPromptTokens: number;
  /** false: authorised and logged, never charged (Anthropic's free count_tokens). */
  metered: boolean;
  send(): Promise<Response>;
  /** A non-2xx upstream answer → the error the client sees (in the route's shape). */
  error(response: Response): Promise<HttpError>;
  /** A complete answer → what the client gets, and its usage. */
  answer(raw: string): Answer;
  /** Done before a complete answer goes to the client (recording what the provider stored). */
  answered?(answer: Answer): Promise<void>;
  /** A background run the answer only started: its id (its ledger charges it when it ends). */
  running?(answer: Answer): string | null;
  /** Admitted by the ledger itself, never from a lease: a run's reservation outlives the request. */
  heldByLedger?: boolean;
  /** An upstream stream → what the client gets, metered. */
  stream(upstream: ReadableStream<Uint8Array>): MeteredStream;
}

/** What a route asks of the policy path: the models to try in order, an exchange for each. */
export interface Plan {
  models: readonly string[];
  build(model: string): Exchange;
  /** When AI Gateway itself failed: the exchange that serves the first model without it. */
  standIn?(model: string): Exchange | null;
}

const RELEASED: Outcome = { cost: 0, tokensIn: 0, tokensOut: 0, estimated: false, cached: false, count: false };
const FREE: Granted = { month: "", amount: 0, state: null, degraded: false };
// Failures of AI Gateway itself (not of a provider behind it): a Workers AI stand-in may answer.
const GATEWAY_DOWN = new Set(["upstream_unreachable", "gateway_error", "upstream_timeout"]);

/** A failure of the upstream exchange (not one of our refusals), and whether to try the next model. */
class UpstreamFailure extends Error {
  constructor(readonly error: HttpError) {
    super(error.message);
  }

  get retryable(): boolean {
    return this.error.status === 429 || this.error.status >= 500;
  }
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

// What a stream comes as: server-sent events, or AWS's binary event stream (Bedrock), which the
// provider's module translates to server-sent events.
const AWS_EVENT_STREAM = "application/vnd.amazon.eventstream";

function isEventStream(response: Response): boolean {
  const type = response.headers.get("content-type") ?? "";
  return type.includes("text/event-stream") || type.includes(AWS_EVENT_STREAM);
}

/** The rate tier's limit, before any ledger call: 429 with when to retry. */
async function enforceRateTier(c: Context<AppEnv>, principal: Principal): Promise<void> {
  const name = principal.policy.rateTier;
  if (name === null) return;
  const tier = Object.hasOwn(RATE_TIERS, name) ? RATE_TIERS[name] : undefined;
  const binding = tier ? (c.env as unknown as Record<string, RateLimit | undefined>)[tier.binding] : undefined;
  if (!tier || !binding) {
    // provision/deploy/bindings.py declares a binding for every tier the stack validates
    throw new HttpError(500, `Rate tier '${name}' has no binding in this Worker.`, { code: "internal_error" });
  }
  const perKey = tier.keyedBy === "key";
  // ids are slugs (no ':'), so the two kinds of counter key never collide
  const { success } = await binding.limit({ key: perKey ? `key:${principal.keyId}` : principal.userId });
  if (success) return;
  const who = perKey ? `API key '${principal.keyId}'` : `user '${principal.userId}'`;
  throw new HttpError(
    429,
    `Rate limit reached for ${who}: ${tier.limit} requests per ${tier.period} s ` +
      `(rate tier '${name}'). Retry after ${tier.period} s.`,
    {
      type: "rate_limit_error",
      code: "rate_limit_exceeded",
      headers: {
        "retry-after": String(tier.period),
        "x-ratelimit-limit-requests": String(tier.limit),
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": `${tier.period}s`,
      },
    },
  );
}

function maxConcurrentOf(principal: Principal): number | null {
  const name = principal.policy.rateTier;
  return (name !== null && Object.hasOwn(RATE_TIERS, name) && RATE_TIERS[name]?.maxConcurrent) || null;
}

export async function serve(c: Context<AppEnv>, plan: Plan): Promise<Response> {
  const principal = c.get("principal");
  const requestId = c.get("requestId");
  const fault = c.get("fault");
  const trace = c.get("trace") ?? newTrace();
  trace.model = plan.models[0] ?? ""; // a request refused by its rate tier counts under its model
  await enforceRateTier(c, principal);
  const maxConcurrent = maxConcurrentOf(principal);
  const failures: string[] = [];
  let gatewayDown = false;
  const attempts: { model: string; standIn: boolean }[] = plan.models.map((model) => ({ model, standIn: false }));

  for (let k = 0; k < attempts.length; k++) {
    const { model, standIn } = attempts[k] as { model: string; standIn: boolean };
    const last = k === attempts.length - 1;
    trace.model = model;
    trace.attempts = k + 1;
    trace.standIn = standIn;
    let exchange: Exchange;
    try {
      exchange = standIn ? (plan.standIn?.(model) as Exchange) : plan.build(model);
    } catch (err) {
      if (k === 0 || !(err instanceof HttpError)) throw err;
      failures.push(`${model}: ${err.message}`); // this fallback cannot take the request
      continue;
    }
    const attemptId = k === 0 ? requestId : `${requestId}.${k + 1}`;
    const settleWith = (admission: Granted, outcome: Outcome): Promise<unknown> =>
      exchange.metered ? settle(c.env, principal, attemptId, admission, outcome, fault) : Promise.resolve();

    let admission: Granted;
    const ledgerStart = performance.now(); // advances across I/O only: this times the ledger call
    const ask = askFor(exchange.bound, exchange.outputCap, principal.policy.clampFloorTokens);
    try {
      const leases = exchange.heldByLedger
        ? null
        : { book: c.get("isolate"), waitUntil: (promise: Promise<unknown>) => c.executionCtx.waitUntil(promise) };
      admission = exchange.metered ? await admit(c.env, principal, attemptId, ask, fault, maxConcurrent, leases) : FREE;
    } catch (err) {
      if (k === 0 || !(err instanceof HttpError)) throw err;
      // A refusal ends the chain (later models would be refused alike), and the client gets the
      // refusal itself (429 insufficient_quota, 503 ledger_unavailable …), not a 502 it would retry.
      console.error(
        JSON.stringify({ event: "fallback_refused", requestId, model, status: err.status, after: failures }),
      );
      err.headers["x-gateway-attempts"] = String(k + 1);
      throw err;
    }
    const ledgerMs = performance.now() - ledgerStart;
    trace.degraded = admission.degraded;
    // a request that awaited the ledger on any attempt waited (what docs/operations.md counts)
    if (exchange.metered) trace.admission = trace.admission === "ledger" ? "ledger" : admittedBy(admission);
    // only part of the worst case fitted: the output cap lowered to what was reserved
    let lowered: { tokens: number; asked: number } | null = null;
    const cap = exchange.outputCap;
    if (exchange.metered && cap && admission.amount < exchange.bound.micros) {
      const tokens = capWithin(cap, ask.leastTokens ?? cap.least, admission.amount);
      exchange = cap.lowered(tokens);
      lowered = { tokens, asked: cap.tokens };
    }
    const sent = Date.now();
    let upstream: Response;
    try {
      upstream = await exchange.send().catch((err: unknown) => {
        throw err instanceof HttpError ? new UpstreamFailure(err) : err;
      });
      if (!upstream.ok) throw new UpstreamFailure(await exchange.error(upstream));
    } catch (err) {
      trace.upstreamMs = (trace.upstreamMs ?? 0) + (Date.now() - sent);
      await settleWith(admission, RELEASED); // nothing was served: give the reservation back now
      if (!(err instanceof UpstreamFailure)) throw err;
      gatewayDown ||= k === 0 && GATEWAY_DOWN.has(err.error.code ?? "");
      const standInModel = attempts[0]?.model ?? model;
      if (last && gatewayDown && !standIn && plan.standIn?.(standInModel)) {
        attempts.push({ model: standInModel, standIn: true }); // AI Gateway itself is down
      }
      if (!err.retryable || k === attempts.length - 1) {
        if (failures.length === 0) throw err.error;
        failures.push(`${model}: ${err.error.message}`);
        throw allFailed(failures);
      }
      failures.push(`${model}: ${err.error.message}`);
      console.error(JSON.stringify({ event: "model_failed", requestId, model, status: err.error.status }));
      continue;
    }
    return answer(c, exchange, upstream, admission, settleWith, {
      lowered,
      attemptId,
      attempts: k + 1,
      standIn,
      ledgerMs,
      trace,
      sent,
    });
  }
  throw allFailed(failures); // every fallback refused before sending
}

function allFailed(failures: readonly string[]): HttpError {
  return new HttpError(502, `Every model failed (${failures.length} attempts): ${failures.join("; ")}`, {
    code: "all_models_failed",
    headers: { "x-gateway-attempts": String(failures.length) },
  });
}

/** The admitted, answered exchange → the client's response; its cost settled after it. */
async function answer(
  c: Context<AppEnv>,
  exchange: Exchange,
  upstream: Response,
  admission: Granted,
  settleWith: (admission: Granted, outcome: Outcome) => Promise<unknown>,
  {
    lowered,
    attemptId,
    attempts,
    standIn,
    ledgerMs,
    trace,
    sent,
  }: {
    lowered: { tokens: number; asked: number } | null;
    attemptId: string;
    attempts: number;
    standIn: boolean;
    ledgerMs: number;
    trace: Trace;
    sent: number;
  },
): Promise<Response> {
  const { call, bound } = exchange;
  const { principal } = call;
  const subject: Subject = {
    requestId: call.requestId,
    model: call.model,
    price: call.price,
    estimatedPromptTokens: exchange.estimatedPromptTokens,
  };
  const charged = (outcome: Outcome): Record<string, string> =>
    exchange.metered
      ? {
          ...quotaHeaders(principal, admission, outcome.cost),
          "x-gateway-cost-usd": formatUsd(outcome.cost),
          "x-gateway-cost-breakdown": costBreakdown(outcome),
        }
      : {};
  const cacheStatus = upstream.headers.get("cf-aig-cache-status");
  const cached = cacheStatus === "HIT";
  trace.cache = cached ? "hit" : cacheStatus === null ? "none" : "miss";
  const waited = (): void => {
    trace.upstreamMs = (trace.upstreamMs ?? 0) + (Date.now() - sent);
  };
  // what the ledger is told, and the request's facts (facts.ts) with it
  const recorded = (outcome: Outcome): Outcome => {
    const full = { ...outcome, ...flags(attempts, standIn) };
    trace.outcome = full;
    trace.fallback = full.fallback === true;
    return full;
  };
  const out = passthroughHeaders(upstream);
  out["x-gateway-model"] = call.model;
  out["x-gateway-attempts"] = String(attempts);
  if (standIn) out["x-gateway-fallback"] = "workers-ai-direct";
  if (lowered) {
    // sent with a lower output cap than asked, to fit the budget's headroom (budget/clamp.ts)
    out["x-gateway-output-cap"] = String(lowered.tokens);
    out["x-gateway-output-cap-asked"] = String(lowered.asked);
  }
  // admission's time, named by whether it awaited the ledger, or only this isolate's lease or pool
  out["server-timing"] = `${admittedBy(admission)};dur=${ledgerMs.toFixed(2)}`;

  // Decide by what came back, not by what was asked: AI Gateway may answer a stream request
  // with one buffered JSON body (e.g. when guardrails inspect the response).
  if (!isEventStream(upstream) || upstream.body === null) {
    let raw: string;
    try {
      raw = await upstream.text();
      waited();
    } catch {
      waited();
      // The provider may already have billed the prompt: record an estimate, never nothing.
      const outcome = recorded(outcomeOf({ usage: null, text: "", complete: false }, subject, cached, bound));
      c.executionCtx.waitUntil(settleWith(admission, outcome));
      throw new HttpError(502, "The upstream answer broke off before it was complete.", {
        code: "upstream_incomplete",
        headers: charged(outcome),
      });
    }
    let answered: ReturnType<Exchange["answer"]>;
    try {
      answered = exchange.answer(raw);
    } catch (err) {
      // An answer the route cannot use (e.g. Workers AI embeddings that are not JSON): the
      // reservation is settled at an estimate (the provider may have billed it), never left held.
      const outcome = recorded(outcomeOf({ usage: null, text: "", complete: false }, subject, cached, bound));
      c.executionCtx.waitUntil(settleWith(admission, outcome));
      if (err instanceof HttpError) Object.assign(err.headers, charged(outcome));
      throw err;
    }
    const { text, said, usage, contentType, extras } = answered;
    if (usage === null && !isJson(raw)) {
      // A success that is not an answer: never passed on as one. The prompt may be billed.
      const outcome = recorded(outcomeOf({ usage: null, text: "", complete: false }, subject, cached, bound));
      c.executionCtx.waitUntil(settleWith(admission, outcome));
      console.error(JSON.stringify({ event: "upstream_answer_invalid", requestId: call.requestId, model: call.model }));
      throw new HttpError(502, "The upstream answer was not valid JSON.", {
        code: "upstream_invalid_response",
        headers: charged(outcome),
      });
    }
    const runId = exchange.metered ? (exchange.running?.(answered) ?? null) : null;
    if (runId !== null) {
      const run = { requestId: attemptId, responseId: runId, subject, bound, ...flags(attempts, standIn) };
      if (await watchRun(c, admission, run)) {
        // charged when the run ends: the state at admission now, no cost yet
        Object.assign(out, quotaHeaders(principal, admission));
        await exchange.answered?.(answered);
        return new Response(text, { status: upstream.status, headers: out });
      }
    }
    // a run its ledger cannot watch is charged its worst case now: never less than it may cost
    const outcome = recorded(
      runId !== null
        ? worstCaseOutcome(bound)
        : outcomeOf({ usage, text: said, complete: true, extras }, subject, cached, bound),
    );
    c.executionCtx.waitUntil(settleWith(admission, outcome));
    Object.assign(out, charged(outcome));
    if (exchange.metered && !outcome.estimated) {
      // the provider's own figures, as priced (an estimate is not "tokens used")
      out["x-gateway-tokens-used"] = String(outcome.tokensIn + outcome.tokensOut);
      out["x-gateway-tokens-in"] = String(outcome.tokensIn);
      out["x-gateway-tokens-out"] = String(outcome.tokensOut);
    }
    if (contentType) out["content-type"] = contentType;
    else if (text !== raw) out["content-type"] = "application/json";
    await exchange.answered?.(answered);
    return new Response(text, { status: upstream.status, headers: out });
  }

  let metered: ReturnType<Exchange["stream"]>;
  try {
    metered = exchange.stream(upstream.body);
  } catch (err) {
    // A stream the route cannot take (embeddings answered as one): settled, never left held.
    await upstream.body.cancel().catch(() => {});
    const outcome = recorded(outcomeOf({ usage: null, text: "", complete: false }, subject, cached, bound));
    c.executionCtx.waitUntil(settleWith(admission, outcome));
    if (err instanceof HttpError) Object.assign(err.headers, charged(outcome));
    throw err;
  }
  const { stream, done, firstChunkAt } = metered;
  const { lease } = admission;
  if (lease) c.executionCtx.waitUntil(lease.org.keepAlive(lease.lease, c.env, done));
  trace.stream = true;
  const outcome = done.then((metered) => {
    waited();
    const first = firstChunkAt();
    trace.ttftMs = first === null ? null : Math.max(0, first - trace.start);
    trace.interrupted = !metered.complete;
    return recorded(outcomeOf(metered, subject, cached, bound));
  });
  trace.finished = outcome.then(() => undefined);
  c.executionCtx.waitUntil(outcome.then((recordedOutcome) => settleWith(admission, recordedOutcome)));
  if (exchange.metered) {
    Object.assign(out, quotaHeaders(principal, admission));
  }
  if ((out["content-type"] ?? "").includes(AWS_EVENT_STREAM)) out["content-type"] = "text/event-stream";
  return new Response(stream, { status: upstream.status, headers: out });
}

/**
 * Hands a background run to its org's ledger, which holds its reservation and charges it when it
 * ends (background-runs.ts); false when it cannot (admitted degraded, or the ledger is down).
 */
async function watchRun(
  c: Context<AppEnv>,
  admission: Granted,
  run: { requestId: string; responseId: string; subject: Subject; bound: Bound; fallback?: boolean; standIn?: boolean },
): Promise<boolean> {
  if (admission.degraded || admission.lease) return false;
  const { orgId, userId, keyId } = c.get("principal");
  const { subject } = run;
  try {
    await ledgerFor(c.env, orgId).watchRun({
      requestId: run.requestId,
      responseId: run.responseId,
      orgId,
      userId,
      keyId,
      month: admission.month,
      model: subject.model,
      price: subject.price,
      bound: run.bound,
      estimatedPromptTokens: subject.estimatedPromptTokens,
      fallback: run.fallback === true,
      standIn: run.standIn === true,
    });
    return true;
  } catch (err) {
    console.error(JSON.stringify({ event: "background_run_unwatched", requestId: run.requestId, error: String(err) }));
    return false;
  }
}

/** Whether an admission awaited the ledger, or only this isolate's lease or cold-start pool. */
function admittedBy(admission: Granted): "pool" | "lease" | "ledger" {
  return admission.pooled ? "pool" : admission.calledLedger === false ? "lease" : "ledger";
}

/** The cost's parts: `tokens=…; tools=…; tier=…` (USD; the tier's may be negative). */
function costBreakdown({ cost, toolMicros = 0, tierMicros = 0 }: Outcome): string {
  const tokens = cost - toolMicros - tierMicros;
  return `tokens=${formatUsd(tokens)}; tools=${formatUsd(toolMicros)}; tier=${formatUsd(tierMicros)}`;
}

/** How the request was served, counted by the ledger (the admin metrics report them). */
function flags(attempts: number, standIn: boolean): Pick<Outcome, "fallback" | "standIn"> {
  return { fallback: attempts > 1 && !standIn, standIn };
}
