// POST /v1/chat/completions: validate, resolve the model, forward through AI Gateway's
// OpenAI-compatible endpoint, and stream the answer back without buffering it.

import { HttpError } from "./errors.js";
import { resolveModel } from "./models.js";
import { fetchUpstream, gatewayHeaders, gatewayUrl, passthroughHeaders, upstreamError } from "./upstream.js";

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
}

export async function chatCompletions(request, env, principal, requestId) {
  const body = await readJsonBody(request);
  validateChat(body);
  const model = resolveModel(body.model, principal.policy);
  const upstreamBody = JSON.stringify({ ...body, model });
  const headers = await gatewayHeaders(env, principal, requestId, {
    provider: model.split("/", 1)[0],
    body: upstreamBody,
  });
  const upstream = await fetchUpstream(gatewayUrl(env, "compat/chat/completions"), {
    method: "POST",
    headers,
    body: upstreamBody,
  });
  if (!upstream.ok) throw await upstreamError(upstream);
  const out = passthroughHeaders(upstream);
  out.set("x-gateway-model", model);
  return new Response(upstream.body, { status: upstream.status, headers: out });
}
