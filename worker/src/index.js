// Entry module: routing, request ids, and the one place where errors become responses.

import { adminApi } from "./admin.js";
import { reconcileUnsettled } from "./admin-ops.js";
import { authenticate } from "./auth.js";
import { chatCompletions } from "./chat.js";
import { HttpError, errorResponse, jsonResponse } from "./errors.js";
import { getModel, listModels } from "./models.js";
import { WORKER_NAME, WORKER_VERSION } from "./settings.js";
import { testRoute } from "./testhooks.js";

export { UsageLedger } from "./ledger.js";

const ROUTES = {
  "/health": { GET: health },
  "/v1/chat/completions": { POST: withPrincipal(chatCompletions) },
  "/v1/models": { GET: withPrincipal(async (req, env, principal) => jsonResponse(listModels(principal.policy))) },
};
const MODEL_PREFIX = "/v1/models/";
const ADMIN_PREFIX = "/admin/";

function withPrincipal(handler) {
  return async (request, env, requestId, ctx) =>
    handler(request, env, await authenticate(request, env), requestId, ctx);
}

async function health() {
  return jsonResponse({ status: "ok", worker: WORKER_NAME, version: WORKER_VERSION });
}

async function getOneModel(request, env, requestId) {
  const principal = await authenticate(request, env);
  const raw = new URL(request.url).pathname.slice(MODEL_PREFIX.length);
  let id;
  try {
    id = decodeURIComponent(raw);
  } catch {
    throw new HttpError(404, `The model '${raw}' does not exist.`, { code: "model_not_found" });
  }
  return jsonResponse(getModel(id, principal.policy));
}

function route(request) {
  const { pathname } = new URL(request.url);
  if (pathname.startsWith(ADMIN_PREFIX)) return adminApi; // authenticates and routes itself
  const methods = pathname.startsWith(MODEL_PREFIX) ? { GET: getOneModel } : ROUTES[pathname];
  if (!methods) {
    throw new HttpError(404, `Invalid URL (${request.method} ${pathname})`, { code: "unknown_url" });
  }
  const handler = methods[request.method];
  if (!handler) {
    throw new HttpError(405, `Method ${request.method} is not allowed on ${pathname}.`, {
      code: "method_not_allowed",
      headers: { allow: Object.keys(methods).join(", ") },
    });
  }
  return handler;
}

function newRequestId() {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return "req_" + [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export default {
  async fetch(request, env, ctx) {
    const requestId = newRequestId();
    let response;
    try {
      response = (await testRoute(request, env)) ?? (await route(request)(request, env, requestId, ctx));
    } catch (err) {
      if (!(err instanceof HttpError)) {
        console.error(JSON.stringify({ requestId, error: String(err?.stack ?? err) }));
        err = new HttpError(500, "The gateway failed to process the request.", { code: "internal_error" });
      }
      response = errorResponse(err);
    }
    response.headers.set("x-request-id", requestId);
    return response;
  },

  // Cron trigger: usage served while a ledger was unreachable is reconciled without a person.
  async scheduled(controller, env, ctx) {
    ctx.waitUntil(
      reconcileUnsettled(env).then((result) =>
        console.log(JSON.stringify({ event: "reconciled", cron: controller.cron, ...result })),
      ),
    );
  },
};
