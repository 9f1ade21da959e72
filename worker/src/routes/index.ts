// The model routes, built from provision/stack/contract.py's table (ROUTES): each route gets its
// error shape, the key's authentication, and its kind's handler. A kind without a handler
// fails the type check; a route added to the table is served (and tested) with no code here.

import type { Context, Hono, MiddlewareHandler } from "hono";
import { factOf, newTrace, recordFact, recordFactAfterResponse } from "../facts/facts";
import type { Outbox } from "../facts/outbox";
import { ROUTE_KINDS, ROUTES } from "../generated/contract";
import type { AppEnv } from "../protocol/env";
import type { Route, RouteKind } from "../request/models";
import { route } from "../request/routing";
import { chat } from "./chat";
import { embeddings } from "./embeddings";
import { gemini } from "./gemini";
import { countTokens, messages } from "./messages";
import { responses } from "./responses";
import { workersAiRun } from "./workers-ai-run";

const HANDLERS: Record<RouteKind, (c: Context<AppEnv>, route: Route) => Promise<Response>> = {
  chat,
  responses,
  embeddings,
  messages,
  count_tokens: countTokens,
  workers_ai_run: workersAiRun,
  gemini,
};

export function registerModelRoutes(app: Hono<AppEnv>, authenticated: MiddlewareHandler<AppEnv>): void {
  for (const spec of ROUTES) {
    const handler = HANDLERS[spec.kind];
    route(
      app,
      spec.path,
      { POST: [observed(spec.path), authenticated, (c) => handler(c, spec)] },
      ROUTE_KINDS[spec.kind].errors,
    );
  }
}

/**
 * Records the request's facts once it has ended (facts.ts): at once for an answer, when the
 * stream is over for a stream. Outside authentication, so refused keys are logged and counted
 * in Analytics Engine too (no tenant's ledger holds them).
 */
function observed(path: string): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const trace = newTrace();
    c.set("trace", trace);
    await next();
    const status = c.res.status;
    const queue = (box: Outbox) => c.executionCtx.waitUntil(box.flush(c.env));
    if (trace.finished === null) {
      const fact = factOf(c, trace, path, status, Date.now());
      c.executionCtx.waitUntil(recordFactAfterResponse(c, trace, fact, queue));
      return;
    }
    c.executionCtx.waitUntil(
      trace.finished.then(() => recordFact(c, trace, factOf(c, trace, path, status, Date.now()), queue)),
    );
  };
}
