// Entry module: the one router, request ids, and the one place where errors become responses.

import { Hono, type MiddlewareHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import { admin } from "./admin";
import { reconcileUnsettled } from "./admin/ops";
import { pollRun } from "./budget/background-runs";
import { NATIVE_PREFIXES } from "./generated/contract";
import { WORKER_NAME, WORKER_VERSION } from "./generated/settings";
import { UsageLedger } from "./ledger";
import { type ErrorShape, errorResponse, HttpError, jsonResponse } from "./lib/errors";
import { hex } from "./lib/hex";
import type { AppEnv, Env } from "./protocol/env";
import { authenticate } from "./request/auth";
import { allowOrigin, checkOrigin, preflight } from "./request/cors";
import { getModel, listModels } from "./request/models";
import { route } from "./request/routing";
import { registerModelRoutes } from "./routes";
import { retrieveResponse } from "./routes/responses";
import { usage } from "./routes/usage";
import { faultOf, isolateOf, registerTestRoutes } from "./testhooks";

// the ledger's alarm looks at background runs through the provider (the ledger imports no provider)
UsageLedger.watchRunsWith(pollRun);

export { UsageLedger };

// Random bytes for request ids, drawn 256 ids at a time: one getRandomValues call per request
// cost more than the id's every other step.
const ID_BYTES = 12;
const idPool = new Uint8Array(ID_BYTES * 256);
let idAt = idPool.length;

function newRequestId(): string {
  if (idAt === idPool.length) {
    crypto.getRandomValues(idPool);
    idAt = 0;
  }
  idAt += ID_BYTES;
  return `req_${hex(idPool.subarray(idAt - ID_BYTES, idAt))}`;
}

const app = new Hono<AppEnv>();

// Every response carries the request's id, errors and 404s included.
app.use("*", async (c, next) => {
  const requestId = newRequestId();
  c.set("requestId", requestId);
  c.set("fault", faultOf(c.req.raw));
  c.set("isolate", isolateOf(c.req.raw));
  let answer: Response | null;
  try {
    answer = preflight(c.req.raw); // before routing: OPTIONS is no route's method
  } catch (err) {
    if (!(err instanceof HttpError)) throw err;
    answer = errorResponse(err, shapeOfPath(new URL(c.req.url).pathname));
  }
  if (answer) {
    answer.headers.set("x-request-id", requestId);
    return answer;
  }
  await next();
  c.res.headers.set("x-request-id", requestId);
});

// Authentication runs per route, so an unknown path is a 404 whatever the key.
const withPrincipal: MiddlewareHandler<AppEnv> = async (c, next) => {
  const principal = await authenticate(c.req.raw.headers, c.env, c.get("fault"));
  c.set("principal", principal);
  const origin = checkOrigin(c, principal);
  await next();
  if (origin !== null) allowOrigin(c.res, origin);
};

route(app, "/health", { GET: () => jsonResponse({ status: "ok", worker: WORKER_NAME, version: WORKER_VERSION }) });
registerModelRoutes(app, withPrincipal);
// a stored response (a background run's state) for its owner: the Responses API's retrieve
for (const path of ["/v1/responses/:id", "/openai/responses/:id"]) {
  route(app, path, { GET: [withPrincipal, retrieveResponse] });
}
route(app, "/v1/usage", { GET: [withPrincipal, usage] });
route(app, "/v1/models", { GET: [withPrincipal, (c) => jsonResponse(listModels(c.get("principal").policy))] });
// A model id holds slashes: the path's rest, as a tail wildcard. A `:id{.+}` beside Gemini's
// `/v1/models/:call{…}` made Hono fall back from its one-expression router to its trie for every
// route (about 0.1 ms a request); `/v1/models/` alone stays no route.
app.all("/v1/models/*", (c, next) => (modelIdOf(c.req.path) === "" ? c.notFound() : next()));
route(app, "/v1/models/*", {
  GET: [withPrincipal, (c) => jsonResponse(getModel(modelIdOf(c.req.path), c.get("principal").policy))],
});
app.route("/admin", admin);
registerTestRoutes(app);

/** `/v1/models/<id>`'s id, percent-decoded as Hono decodes a route parameter (a malformed
 * escape stays as it came, the well-formed ones around it decoded). */
function modelIdOf(path: string): string {
  const rest = path.slice("/v1/models/".length);
  if (!rest.includes("%")) return rest;
  try {
    return decodeURIComponent(rest);
  } catch {
    return rest.replace(/(?:%[0-9A-Fa-f]{2})+/g, (escapes) => {
      try {
        return decodeURIComponent(escapes);
      } catch {
        return escapes;
      }
    });
  }
}

/** An unknown path under a provider's namespace answers in that provider's error shape. */
function shapeOfPath(pathname: string): ErrorShape {
  if (pathname.startsWith("/anthropic/")) return "anthropic";
  if (pathname.startsWith(NATIVE_PREFIXES[2])) return "cloudflare";
  // Gemini's namespaces: its provider prefix, v1beta, and a v1 model's method (`models/x:y`)
  if (pathname.startsWith(NATIVE_PREFIXES[3]) || pathname.startsWith("/v1beta/")) return "google";
  if (/^\/v1\/models\/[^/]+:[A-Za-z]+$/.test(pathname)) return "google";
  return "openai";
}

// Not a route: a 404, never a proxy (provider namespaces included).
app.notFound((c) => {
  const { pathname } = new URL(c.req.url);
  const error = new HttpError(404, `Invalid URL (${c.req.method} ${pathname})`, { code: "unknown_url" });
  return errorResponse(error, shapeOfPath(pathname));
});

app.onError((err, c) => {
  const shape = c.get("errors") ?? "openai";
  if (err instanceof HttpError) return errorResponse(err, shape);
  if (err instanceof HTTPException) return errorResponse(new HttpError(err.status, err.message), shape);
  console.error(JSON.stringify({ requestId: c.get("requestId"), error: String(err?.stack ?? err) }));
  const internal = new HttpError(500, "The gateway failed to process the request.", { code: "internal_error" });
  return errorResponse(internal, shape);
});

export default {
  fetch: app.fetch,

  // Cron trigger: usage served while a ledger was unreachable is reconciled without a person.
  async scheduled(controller: ScheduledController, env: Env, ctx: ExecutionContext): Promise<void> {
    ctx.waitUntil(
      reconcileUnsettled(env).then((result) =>
        console.log(JSON.stringify({ event: "reconciled", cron: controller.cron, ...result })),
      ),
    );
  },
} satisfies ExportedHandler<Env>;
