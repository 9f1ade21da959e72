// Per-request facts, recorded once per request when it ends: one structured log line (Workers
// Logs), one Analytics Engine data point (queryable with Cloudflare's SQL API or Grafana), and,
// for an authenticated request, one fact into its org's ledger (the admin API's metrics),
// through this isolate's outbox (outbox.ts: summed per key, the ledger's work is per key, not
// per request). Money is not here: costs are the ledger's settlements; a fact repeats the cost
// only so that metrics can break it down by day, model and route.
//
// The log line and the data point never hold a key or a prompt.

import type { Context } from "hono";
import { utcDay } from "../lib/clock";
import type { AppEnv } from "../protocol/env";
import type { Fact } from "../protocol/metrics";
import type { Trace } from "../protocol/trace";
import { isolateIdOf, type Outbox, outboxFor, queuedInOutboxes } from "./outbox";

export function newTrace(now: number = Date.now()): Trace {
  return {
    start: now,
    model: "",
    attempts: 0,
    upstreamMs: null,
    ttftMs: null,
    stream: false,
    interrupted: false,
    outcome: null,
    cache: "none",
    fallback: false,
    standIn: false,
    degraded: false,
    admission: "",
    finished: null,
  };
}

// The Analytics Engine data point's layout (docs/operations.md shows queries over it).
// index1: the org (the sampling key: each org's points are sampled on their own).
export const ANALYTICS_BLOBS = ["org", "user", "key", "model", "route", "cache", "requestId", "admission"] as const;
export const ANALYTICS_DOUBLES = [
  "status",
  "latencyMs",
  "upstreamMs",
  "ttftMs",
  "tokensIn",
  "tokensOut",
  "costMicros",
  "attempts",
  "fallback",
  "standIn",
  "degraded",
  "stream",
  "interrupted",
  "tokensCached",
  "tokensCacheWrite",
] as const;

/** The request's facts from its trace and final response. */
export function factOf(c: Context<AppEnv>, trace: Trace, route: string, status: number, end: number): Fact {
  const principal = c.get("principal") as AppEnv["Variables"]["principal"] | undefined;
  const outcome = trace.outcome;
  const counted = outcome?.count === true;
  return {
    requestId: c.get("requestId"),
    day: utcDay(trace.start),
    userId: principal?.userId ?? "",
    keyId: principal?.keyId ?? "",
    model: trace.model,
    route,
    status,
    attempts: trace.attempts,
    stream: trace.stream,
    latencyMs: Math.max(0, end - trace.start),
    upstreamMs: trace.upstreamMs,
    ttftMs: trace.ttftMs,
    tokensIn: counted ? outcome.tokensIn : 0,
    tokensOut: counted ? outcome.tokensOut : 0,
    tokensCached: counted ? (outcome.tokensCached ?? 0) : 0,
    tokensCacheWrite: counted ? (outcome.tokensCacheWrite ?? 0) : 0,
    costMicros: counted ? outcome.cost : 0,
    cache: trace.cache,
    fallback: trace.fallback,
    standIn: trace.standIn,
    degraded: trace.degraded,
    interrupted: trace.interrupted,
    admission: trace.admission,
  };
}

/** The log line, the data point and (authenticated requests) the ledger's fact. */
export function recordFact(c: Context<AppEnv>, trace: Trace, fact: Fact, queue: (box: Outbox) => void): void {
  const principal = c.get("principal") as AppEnv["Variables"]["principal"] | undefined;
  const orgId = principal?.orgId ?? "";
  // the prompt only for an org that opted in (logPrompts), and never in the other sinks
  const prompt = principal?.policy.logPrompts && trace.prompt !== undefined ? { prompt: trace.prompt } : {};
  console.log(JSON.stringify({ event: "request", orgId, ...fact, ...prompt }));
  const dataset = c.env.REQUEST_ANALYTICS;
  if (dataset) {
    try {
      const blobs: Record<(typeof ANALYTICS_BLOBS)[number], string> = {
        org: orgId,
        user: fact.userId,
        key: fact.keyId,
        model: fact.model,
        route: fact.route,
        cache: fact.cache,
        requestId: fact.requestId,
        admission: fact.admission,
      };
      const doubles: Record<(typeof ANALYTICS_DOUBLES)[number], number> = {
        status: fact.status,
        latencyMs: fact.latencyMs,
        upstreamMs: fact.upstreamMs ?? -1,
        ttftMs: fact.ttftMs ?? -1,
        tokensIn: fact.tokensIn,
        tokensOut: fact.tokensOut,
        costMicros: fact.costMicros,
        attempts: fact.attempts,
        fallback: Number(fact.fallback),
        standIn: Number(fact.standIn),
        degraded: Number(fact.degraded),
        stream: Number(fact.stream),
        interrupted: Number(fact.interrupted),
        tokensCached: fact.tokensCached,
        tokensCacheWrite: fact.tokensCacheWrite,
      };
      dataset.writeDataPoint({
        indexes: [orgId],
        blobs: ANALYTICS_BLOBS.map((name) => blobs[name]),
        doubles: ANALYTICS_DOUBLES.map((name) => doubles[name]),
      });
    } catch (err) {
      // metrics never fail a request
      console.error(JSON.stringify({ event: "analytics_write_failed", error: String(err) }));
    }
  }
  if (!principal) return; // no tenant: nothing for a ledger
  const box = outboxFor(isolateIdOf(c.get("isolate")), orgId);
  box.push(fact);
  queue(box);
}

let deferred = 0; // facts of answered requests, waiting for their response to be on its way

/**
 * recordFact once the response is on its way (a timer runs after the turn that handed it to
 * the runtime): the log line, the data point and the outbox are not the client's wait.
 */
export async function recordFactAfterResponse(
  c: Context<AppEnv>,
  trace: Trace,
  fact: Fact,
  queue: (box: Outbox) => void,
): Promise<void> {
  deferred += 1;
  try {
    await new Promise((resolve) => setTimeout(resolve, 0));
  } finally {
    deferred -= 1;
  }
  recordFact(c, trace, fact, queue);
}

/** Test renders only: facts not yet in a ledger. */
export function queuedFacts(): number {
  return deferred + queuedInOutboxes();
}
