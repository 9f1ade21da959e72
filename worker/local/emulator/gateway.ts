// The AI Gateway pipeline for /v1/{account}/{gateway}/...:
//   gateway exists (400/2001) -> authentication (401/2009) -> route (404/405) -> metadata and
//   custom-cost headers (400) -> gateway rate limit (429/2003) -> per step: fault or cache
//   lookup -> fake provider (with retries / request timeout) -> cache store -> log -> write.
// The Universal endpoint runs the per-step part for each step until one answers 2xx.
import type { IncomingMessage, ServerResponse } from "node:http";
import {
  entriesOf,
  gatewayErrorResult,
  isJsonObject,
  jsonResult,
  prop,
  readBody,
  requestHeaders,
  sleep,
  textResult,
  writeResult,
} from "./http";
import { ulid } from "./ids";
import { cachePlan, collectsLog, costOf, parseCustomCost, parseMetadata, retryDelay, retryPolicy } from "./options";
import {
  gatewayTokenAccepted,
  generate,
  parseBody,
  prepareCall,
  providerErrorResult,
  resolveRoute,
  streamErrorChunks,
} from "./routes";
import type { EmulatorState, GenerateContext } from "./state";
import type {
  CachePlan,
  CacheStatus,
  Call,
  CustomCost,
  Fault,
  GatewayConfig,
  HeaderMap,
  JsonObject,
  LogEntry,
  Metadata,
  ParsedBody,
  ProviderRoute,
  RequestHeaders,
  Result,
} from "./types";

const MAX_LOGGED_BODY_CHARS = 64 * 1024;

/** A request under /v1/ (or a binding call) as the pipeline sees it; metadata and customCost once parsed. */
export interface GatewayRequest {
  headers: RequestHeaders;
  /** The query string, without its `?` (Gemini's `alt=sse`, `key=`). */
  query: string;
  rawBody: string;
  parsed: ParsedBody;
  path: string;
  metadata: Metadata | null;
  customCost: CustomCost | null;
}

/** One provider request: the whole request for a plain route, or one Universal step. */
export interface Step {
  route: ProviderRoute;
  headers: RequestHeaders;
  parsed: ParsedBody;
  rawBody: string;
  path: string;
  /** The query string, without its `?`. */
  query?: string;
  metadata: Metadata | null;
  /** A Universal step's `config` (retries, timeout), as the client sent it. */
  config?: unknown;
}

/** One try at a step. */
interface Attempt {
  result: Result;
  cacheStatus: CacheStatus;
  failed: boolean;
  timedOut?: boolean;
  fault?: string | undefined;
}

/** What the pipeline decided; everything but `result` feeds the log and the cf-aig-* headers. */
export interface Outcome {
  result: Result;
  gateway?: GatewayConfig;
  provider?: string;
  model?: string | null;
  cacheStatus?: CacheStatus;
  failed?: boolean;
  timedOut?: boolean;
  fault?: string | undefined;
  step?: number;
}

const isSuccess = (status: number) => status >= 200 && status < 300;
const isRetryable = (status: number) => status === 429 || status >= 500;

/** A fault's response: gateway error, literal body, provider-shaped error, or a normal answer. */
function faultResult(fault: Fault, call: Call, ctx: GenerateContext): Result {
  let result: Result;
  if (fault.resetConnection === true) return { status: 0, headers: {}, body: "", resetConnection: true };
  if (fault.gatewayError !== undefined) result = gatewayErrorResult(fault.gatewayError, fault.status);
  else if (typeof fault.body === "string") result = textResult(fault.status ?? 200, fault.body);
  else if (fault.body !== undefined) result = jsonResult(fault.status ?? 200, fault.body);
  else if (fault.status !== undefined && fault.status >= 300) result = providerErrorResult(call, fault.status);
  else result = generate(call, ctx); // delivery-only fault: delay / slow chunks / cut
  // Fault headers may hold any JSON value; node stringifies what is not a string.
  result = { ...result, headers: { ...result.headers, ...((fault.headers ?? {}) as HeaderMap) } };
  const errorAt = fault.errorAfterChunks;
  if (errorAt !== undefined && result.chunks !== undefined && errorAt < result.chunks.length) {
    // Mid-stream failure: the first chunks of the real answer, then the provider's in-band error
    // (a stream that ends sooner is sent whole).
    const tail = result.failStream?.(errorAt, fault.errorEvent ?? "error") ?? streamErrorChunks(call);
    result = { ...result, chunks: [...result.chunks.slice(0, errorAt), ...tail] };
  }
  if (fault.chunkDelayMs !== undefined) result.chunkDelayMs = fault.chunkDelayMs;
  if (fault.cutAfterChunks !== undefined) result.cutAfterChunks = fault.cutAfterChunks;
  return result;
}

async function attemptOnce(
  emu: EmulatorState,
  ctx: GenerateContext,
  step: Step,
  call: Call,
  cache: CachePlan | null,
  timeoutMs: number | undefined,
): Promise<Attempt> {
  const fault = emu.faults.take({
    models: [call.bodyModel, call.model, `${call.provider}/${call.model}`],
    provider: call.provider,
    path: step.path,
    metadata: step.metadata,
  });
  if (fault === null && cache !== null) {
    const hit = emu.cache.get(cache.key);
    if (hit !== undefined) {
      return {
        result: { status: hit.status, headers: hit.headers, body: hit.body, usage: hit.usage },
        cacheStatus: "HIT",
        failed: false,
      };
    }
  }
  const delayMs = fault?.delayMs ?? 0;
  if (delayMs > 0) {
    if (timeoutMs !== undefined && delayMs > timeoutMs) {
      await sleep(timeoutMs);
      return { result: gatewayErrorResult(2995), cacheStatus: "MISS", failed: true, timedOut: true };
    }
    await sleep(delayMs);
  }
  const result = fault === null ? generate(call, ctx) : faultResult(fault, call, ctx);
  if (fault === null && cache !== null && isSuccess(result.status) && result.chunks === undefined) {
    emu.cache.set(
      cache.key,
      { status: result.status, headers: result.headers, body: result.body, usage: result.usage },
      cache.ttl,
    );
  }
  return { result, cacheStatus: "MISS", failed: !isSuccess(result.status), fault: fault?.id };
}

/** One provider request (a plain route, one Universal step, or a binding call), with retries. */
export async function runStep(
  emu: EmulatorState,
  gatewayId: string,
  gateway: GatewayConfig,
  step: Step,
): Promise<Outcome> {
  const call = prepareCall(step.route, step.headers, step.parsed, new URLSearchParams(step.query ?? ""), {
    body: step.rawBody,
    path: step.path,
  });
  const who = { provider: call.provider, model: call.model };
  if (call.error) return { ...who, result: call.error, failed: true };
  const policy = retryPolicy(step.headers, step.config);
  const cache = cachePlan(gatewayId, gateway, step.headers, call, step.rawBody);
  const ctx: GenerateContext = {
    config: emu.config,
    gatewayId,
    gateway,
    promptCache: emu.promptCache,
    responses: emu.responses,
  };
  let outcome: Attempt;
  for (let attempt = 1; ; attempt++) {
    outcome = await attemptOnce(emu, ctx, step, call, cache, policy.timeoutMs);
    const retry = outcome.timedOut || (outcome.failed && isRetryable(outcome.result.status));
    if (!retry || attempt >= policy.attempts) break;
    await sleep(retryDelay(policy, attempt));
  }
  return { ...who, ...outcome };
}

function lowerCaseHeaders(headers: unknown): HeaderMap {
  const out: HeaderMap = {};
  for (const [name, value] of entriesOf(headers ?? {})) {
    out[name.toLowerCase()] = typeof value === "string" ? value : JSON.stringify(value);
  }
  return out;
}

/** Universal endpoint: steps in order, next one only when the previous failed; cf-aig-step. */
async function runUniversal(
  emu: EmulatorState,
  gatewayId: string,
  gateway: GatewayConfig,
  request: GatewayRequest,
): Promise<Outcome> {
  const { json, parseError } = request.parsed;
  const steps: unknown[] | null = Array.isArray(json)
    ? json
    : json && typeof json === "object" && !parseError
      ? [json]
      : null;
  if (steps === null || steps.length === 0) return { result: gatewayErrorResult(2996) };
  let outcome!: Outcome; // steps is not empty: the loop assigns it at least once
  for (let i = 0; i < steps.length; i++) {
    const s = steps[i];
    // (A JSON array has no provider either, so isJsonObject rejects nothing the field checks would pass.)
    if (!isJsonObject(s) || typeof s.provider !== "string" || typeof s.endpoint !== "string") {
      outcome = {
        result: gatewayErrorResult(2996, undefined, `step ${i}: provider and endpoint are required`),
        failed: true,
        step: i,
      };
      continue;
    }
    const [endpoint = "", query = ""] = s.endpoint.replace(/^\/+/, "").split("?", 2);
    const route = resolveRoute([s.provider, ...endpoint.split("/")]);
    if (route === null || route.universal) {
      outcome = { result: gatewayErrorResult(2990), failed: true, step: i };
      continue;
    }
    // Precedence: step headers > outer request headers (cf-contract.md 2.4).
    const headers = { ...request.headers, ...lowerCaseHeaders(s.headers) };
    const metadata =
      headers["cf-aig-metadata"] === request.headers["cf-aig-metadata"]
        ? request.metadata
        : (parseMetadata(headers["cf-aig-metadata"]).value ?? request.metadata);
    outcome = {
      ...(await runStep(emu, gatewayId, gateway, {
        route,
        headers,
        parsed: { json: s.query, parseError: false },
        rawBody: JSON.stringify(s.query ?? null),
        path: `${request.path.replace(/\/+$/, "")}/${s.provider}/${endpoint}`,
        query,
        metadata,
        config: s.config ?? {},
      })),
      step: i,
    };
    if (!outcome.failed) break;
  }
  return outcome;
}

export function allowsRate(emu: EmulatorState, gatewayId: string, gateway: GatewayConfig): boolean {
  if (gateway.rateLimit.limit <= 0 || gateway.rateLimit.interval <= 0) return true;
  return emu.limiterFor(gatewayId, gateway).allow();
}

async function decide(
  emu: EmulatorState,
  req: IncomingMessage,
  request: GatewayRequest,
  segments: readonly string[],
): Promise<Outcome> {
  const [account, gatewayId, ...rest] = segments;
  const config = emu.config;
  const gateway =
    account === config.accountId && gatewayId !== undefined && Object.hasOwn(config.gateways, gatewayId)
      ? config.gateways[gatewayId]
      : undefined;
  if (gatewayId === undefined || gateway === undefined) return { result: gatewayErrorResult(2001) };
  const base = { gateway };
  if (gateway.authentication && !gatewayTokenAccepted(gateway, request.headers)) {
    return { ...base, result: gatewayErrorResult(2009) };
  }
  const route = resolveRoute(rest);
  if (route === null) return { ...base, result: gatewayErrorResult(2990) };
  // every provider route takes POST, but reading a stored response (GET responses/{id})
  const method = "op" in route && route.op === "retrieve" ? "GET" : "POST";
  if (req.method !== method) {
    const result = gatewayErrorResult(2991);
    result.headers.allow = method;
    return { ...base, result };
  }
  const metadata = parseMetadata(request.headers["cf-aig-metadata"]);
  if (metadata.error !== undefined) return { ...base, result: gatewayErrorResult(2992, undefined, metadata.error) };
  request.metadata = metadata.value;
  const customCost = parseCustomCost(request.headers["cf-aig-custom-cost"]);
  if (customCost.error !== undefined) return { ...base, result: gatewayErrorResult(2993, undefined, customCost.error) };
  request.customCost = customCost.value;
  if (!allowsRate(emu, gatewayId, gateway)) return { ...base, result: gatewayErrorResult(2003) };
  const outcome = route.universal
    ? await runUniversal(emu, gatewayId, gateway, request)
    : await runStep(emu, gatewayId, gateway, {
        route,
        headers: request.headers,
        parsed: request.parsed,
        rawBody: request.rawBody,
        path: request.path,
        query: request.query,
        metadata: request.metadata,
      });
  return { ...base, ...outcome };
}

function loggedBody(rawBody: string, parsed: ParsedBody): unknown {
  if (rawBody === "") return null;
  if (!parsed.parseError) return parsed.json;
  return rawBody.length > MAX_LOGGED_BODY_CHARS ? rawBody.slice(0, MAX_LOGGED_BODY_CHARS) : rawBody;
}

/** How a request reached the pipeline, for the log: HTTP (path) or the AI binding. */
export interface Origin {
  gatewayId: string | null;
  binding: string | null;
  gatewayOptions: JsonObject | null;
  /** The headers to log (a binding call's original headers, not miniflare's MF-* wrapping). */
  headers: LogEntry["headers"];
  /** Response headers besides cf-aig-log-id / request-id / cache-status / step. */
  responseHeaders?: HeaderMap;
  /** False when no gateway was involved (a binding call without gateway.id): no cf-aig-* headers. */
  viaGateway?: boolean;
}

/** Logs a decided request and writes its answer; shared by HTTP and binding calls. */
export async function respond(
  emu: EmulatorState,
  req: IncomingMessage,
  res: ServerResponse,
  started: number,
  request: GatewayRequest,
  outcome: Outcome,
  origin: Origin,
): Promise<void> {
  const logId = ulid(started);
  const { result } = outcome;
  const usage = result.usage ?? null;
  const bodyModel = prop(request.parsed.json, "model");
  const entry: LogEntry = {
    logId,
    time: started,
    method: req.method,
    path: request.path,
    query: request.query,
    headers: origin.headers,
    body: loggedBody(request.rawBody, request.parsed),
    gatewayId: origin.gatewayId,
    binding: origin.binding,
    gatewayOptions: origin.gatewayOptions,
    status: result.status,
    cacheStatus: outcome.cacheStatus ?? null,
    provider: outcome.provider ?? null,
    model: outcome.model ?? (typeof bodyModel === "string" ? bodyModel : null),
    stream: result.chunks !== undefined,
    step: outcome.step ?? null,
    fault: outcome.fault ?? null,
    metadata: request.metadata,
    customCost: request.customCost,
    cost: costOf(request.customCost, usage),
    usage,
    collected: collectsLog(outcome.gateway, request.headers),
    delivery: "pending",
    durationMs: null,
  };
  // Logged before the first byte goes out, so a client that has its answer always finds it.
  emu.log.push(entry);
  const extra: HeaderMap = { ...origin.responseHeaders };
  if (origin.viaGateway !== false) {
    extra["cf-aig-log-id"] = logId;
    extra["cf-aig-request-id"] = logId;
    if (outcome.cacheStatus) extra["cf-aig-cache-status"] = outcome.cacheStatus;
    if (outcome.step !== undefined) extra["cf-aig-step"] = String(outcome.step);
  }
  const sent = result.chunks === undefined ? undefined : [];
  emu.answers.record(
    logId,
    sent ? { status: result.status, chunks: sent } : { status: result.status, body: result.body ?? "" },
  );
  entry.delivery = await writeResult(res, result, extra, emu.config.streamChunkDelayMs, sent);
  entry.durationMs = Date.now() - started;
}

/** Handles one request under /v1/; `segments` are the decoded path segments after /v1/. */
export async function handleGateway(
  emu: EmulatorState,
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  segments: readonly string[],
): Promise<void> {
  const started = Date.now();
  const rawBody = await readBody(req);
  const url = req.url ?? "";
  const request: GatewayRequest = {
    headers: requestHeaders(req),
    query: url.includes("?") ? url.slice(url.indexOf("?") + 1) : "",
    rawBody,
    parsed: parseBody(rawBody),
    path,
    metadata: null,
    customCost: null,
  };
  const outcome = await decide(emu, req, request, segments);
  await respond(emu, req, res, started, request, outcome, {
    gatewayId: segments[1] ?? null,
    binding: null,
    gatewayOptions: null,
    headers: req.headers,
  });
}
