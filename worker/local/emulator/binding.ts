// The Workers AI binding (env.AI), served locally. Miniflare 4's
// `ai: {binding: "AI", remoteProxyConnectionString: new URL(emulatorUrl + "/")}` runs workerd's
// real binding code (cloudflare-internal:ai-api) and forwards each fetch it makes to us:
// `POST /` with `MF-URL` = the original URL, `MF-Binding` = the binding name and every
// original header as `MF-Header-<name>`; our response goes back to the binding verbatim.
//
// Evidence (probed with a tiny Worker in miniflare 4.20260730.0 / workerd 1.20260730.1, and
// the ai-api module source embedded in the workerd binary):
//  * env.AI.run(model, inputs, {gateway: {id, metadata, skipCache, cacheTtl}}) sends
//    MF-URL https://workers-binding.ai/ai-gateway/run?version=3 (…/run?version=3 without a
//    gateway id), MF-Header-content-type: application/json, MF-Header-cf-consn-sdk-version:
//    2.0.0, MF-Header-cf-consn-model-id: <model>, and the body
//    {"inputs": <inputs>, "options": {"gateway": {...exactly as given}}}.
//  * run() sets env.AI.lastRequestId from `cf-ai-req-id` and env.AI.aiGatewayLogId from
//    `cf-aig-log-id`. A non-2xx answer throws an Error named body.name (default
//    InferenceUpstreamError) with message "<internalCode>: <description>", else
//    "<errors[0].code>: <errors[0].message>", else the raw text. A 2xx answer whose
//    content-type is exactly application/json is returned as `await res.json()` AS IS: the
//    binding does not unwrap a v4 `result`, so the production endpoint must answer the bare
//    model output, which matches the catalog's AiTextGenerationOutput
//    {response, tool_calls?, usage} (workers-types). Anything else (text/event-stream) comes
//    back as res.body, a ReadableStream of the raw bytes.
//  * Miniflare also sends `GET /?MF-Binding=AI` WebSocket probes (no MF-URL): they get the
//    emulator's ordinary 404 and the calls still work.
// A call runs through the gateway pipeline like an HTTP request: gateway existence (400/2001;
// an unconfigured "default" is auto-created with default settings), no gateway token (the
// binding is pre-authenticated) and no provider key, metadata, rate limit, faults, cache
// (options.gateway.{skipCache, cacheTtl, cacheKey}) and retries; it is logged with
// provider "workers-ai", gatewayId, binding and gatewayOptions.
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { defaultGateway } from "./config";
import { allowsRate, type GatewayRequest, type Outcome, respond, runStep } from "./gateway";
import { gatewayErrorResult, isJsonObject, prop, readBody } from "./http";
import { parseMetadata } from "./options";
import { bindingErrorResult, errorResult as v4Error } from "./providers/workers-ai";
import { parseBody } from "./routes";
import type { EmulatorState } from "./state";
import type { GatewayConfig, HeaderMap, JsonObject, ProviderRoute } from "./types";

const HEADER_PREFIX = "mf-header-";
const RUN_PATHS = new Set(["/ai-gateway/run", "/run"]);
const NO_ROUTE_CODE = 7000; // Cloudflare API "No route for that URI"

/** Whether a request is a binding call forwarded by miniflare's remote proxy. */
export function isBindingCall(req: IncomingMessage): boolean {
  return typeof req.headers["mf-url"] === "string";
}

/** The headers the binding sent (MF-Header-<name>), by lower-case name. */
function originalHeaders(req: IncomingMessage): HeaderMap {
  const out: HeaderMap = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (name.startsWith(HEADER_PREFIX) && typeof value === "string") out[name.slice(HEADER_PREFIX.length)] = value;
  }
  return out;
}

/** options.gateway as the cf-aig-* headers it stands for, so the HTTP pipeline applies it. */
function optionHeaders(options: JsonObject | null): HeaderMap {
  const out: HeaderMap = {};
  if (options === null) return out;
  const set = (name: string, value: unknown) => {
    if (value === undefined || value === null) return;
    out[name] = typeof value === "string" ? value : JSON.stringify(value);
  };
  set("cf-aig-metadata", options.metadata);
  set("cf-aig-skip-cache", options.skipCache);
  set("cf-aig-cache-ttl", options.cacheTtl);
  set("cf-aig-cache-key", options.cacheKey);
  set("cf-aig-collect-log", options.collectLog);
  set("cf-aig-event-id", options.eventId);
  set("cf-aig-request-timeout", options.requestTimeoutMs);
  set("cf-aig-max-attempts", prop(options.retries, "maxAttempts"));
  set("cf-aig-retry-delay", prop(options.retries, "retryDelayMs"));
  set("cf-aig-backoff", prop(options.retries, "backoff"));
  return out;
}

function gatewayFor(emu: EmulatorState, id: string): GatewayConfig | undefined {
  if (Object.hasOwn(emu.config.gateways, id)) return emu.config.gateways[id];
  return id === "default" ? defaultGateway() : undefined;
}

async function decide(
  emu: EmulatorState,
  method: string | undefined,
  pathname: string,
  request: GatewayRequest,
  gatewayId: string | null,
): Promise<Outcome> {
  if (method !== "POST" || !RUN_PATHS.has(pathname)) {
    return { result: v4Error(404, NO_ROUTE_CODE, "No route for that URI") };
  }
  const json = request.parsed.json;
  if (request.parsed.parseError || !isJsonObject(json)) {
    return { result: bindingErrorResult(400, 5006, "AiError: Bad input: request body is not valid JSON") };
  }
  // /ai-gateway/run names a gateway; plain /run (no gateway.id) goes to Workers AI directly.
  let gateway = defaultGateway();
  if (pathname === "/ai-gateway/run") {
    const found = gatewayId === null ? undefined : gatewayFor(emu, gatewayId);
    if (found === undefined) return { result: gatewayErrorResult(2001) };
    gateway = found;
  }
  const base = { gateway };
  const metadata = parseMetadata(request.headers["cf-aig-metadata"]);
  if (metadata.error !== undefined) return { ...base, result: gatewayErrorResult(2992, undefined, metadata.error) };
  request.metadata = metadata.value;
  if (gatewayId !== null && !allowsRate(emu, gatewayId, gateway)) return { ...base, result: gatewayErrorResult(2003) };
  const model = request.headers["cf-consn-model-id"] ?? "";
  const route: ProviderRoute = {
    head: "workers-ai",
    endpoint: model,
    family: "workers-ai",
    op: "run",
    pathModel: model,
    binding: true,
  };
  const inputs = json.inputs;
  const outcome = await runStep(emu, gatewayId ?? "", gateway, {
    route,
    headers: request.headers,
    parsed: { json: inputs, parseError: false },
    rawBody: JSON.stringify(inputs ?? null),
    path: request.path,
    metadata: request.metadata,
  });
  return { ...base, ...outcome };
}

/** Serves one forwarded binding fetch (see header). */
export async function handleBinding(emu: EmulatorState, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const started = Date.now();
  const rawBody = await readBody(req);
  let target: URL;
  try {
    target = new URL(String(req.headers["mf-url"]));
  } catch {
    target = new URL("https://workers-binding.ai/");
  }
  const headers = originalHeaders(req);
  const parsed = parseBody(rawBody);
  const options = prop(prop(parsed.json, "options"), "gateway");
  const gatewayOptions = isJsonObject(options) ? options : null;
  const id = gatewayOptions?.id;
  const gatewayId = typeof id === "string" && id !== "" ? id : null;
  const request: GatewayRequest = {
    query: "",
    headers: { ...headers, ...optionHeaders(gatewayOptions) },
    rawBody,
    parsed,
    path: target.pathname,
    metadata: null,
    customCost: null,
  };
  const binding = req.headers["mf-binding"];
  const outcome = await decide(emu, req.method, target.pathname, request, gatewayId);
  await respond(emu, req, res, started, request, outcome, {
    gatewayId,
    binding: typeof binding === "string" ? binding : null,
    gatewayOptions,
    headers,
    responseHeaders: { "cf-ai-req-id": randomUUID() },
    viaGateway: target.pathname !== "/run",
  });
}
