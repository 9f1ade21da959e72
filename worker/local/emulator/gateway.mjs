// The AI Gateway pipeline for /v1/{account}/{gateway}/...:
//   gateway exists (400/2001) -> authentication (401/2009) -> route (404/405) -> metadata and
//   custom-cost headers (400) -> gateway rate limit (429/2003) -> per step: fault or cache
//   lookup -> fake provider (with retries / request timeout) -> cache store -> log -> write.
// The Universal endpoint runs the per-step part for each step until one answers 2xx.
import { gatewayErrorResult, jsonResult, readBody, sleep, textResult, writeResult } from "./http.mjs";
import { ulid } from "./ids.mjs";
import { cachePlan, collectsLog, costOf, parseCustomCost, parseMetadata, retryDelay, retryPolicy } from "./options.mjs";
import { gatewayTokenAccepted, generate, parseBody, prepareCall, providerErrorResult, resolveRoute } from "./routes.mjs";

const MAX_LOGGED_BODY_CHARS = 64 * 1024;

const isSuccess = (status) => status >= 200 && status < 300;
const isRetryable = (status) => status === 429 || status >= 500;

/** A fault's response: gateway error, literal body, provider-shaped error, or a normal answer. */
function faultResult(fault, call, config, gateway) {
  let result;
  if (fault.gatewayError !== undefined) result = gatewayErrorResult(fault.gatewayError, fault.status);
  else if (fault.body !== undefined && typeof fault.body === "string") result = textResult(fault.status ?? 200, fault.body);
  else if (fault.body !== undefined) result = jsonResult(fault.status ?? 200, fault.body);
  else if (fault.status !== undefined && fault.status >= 300) result = providerErrorResult(call, fault.status);
  else result = generate(call, config, gateway); // delivery-only fault: delay / slow chunks / cut
  result = { ...result, headers: { ...result.headers, ...(fault.headers ?? {}) } };
  if (fault.chunkDelayMs !== undefined) result.chunkDelayMs = fault.chunkDelayMs;
  if (fault.cutAfterChunks !== undefined) result.cutAfterChunks = fault.cutAfterChunks;
  return result;
}

async function attemptOnce(emu, gateway, step, call, cache, timeoutMs) {
  const fault = emu.faults.take({
    models: [call.bodyModel, call.model, `${call.provider}/${call.model}`],
    provider: call.provider,
    path: step.path,
    metadata: step.metadata,
  });
  if (fault === null && cache !== null) {
    const hit = emu.cache.get(cache.key);
    if (hit !== undefined) {
      return { result: { status: hit.status, headers: hit.headers, body: hit.body, usage: hit.usage }, cacheStatus: "HIT", failed: false };
    }
  }
  if (fault?.delayMs > 0) {
    if (timeoutMs !== undefined && fault.delayMs > timeoutMs) {
      await sleep(timeoutMs);
      return { result: gatewayErrorResult(2995), cacheStatus: "MISS", failed: true, timedOut: true };
    }
    await sleep(fault.delayMs);
  }
  const result = fault === null ? generate(call, emu.config, gateway) : faultResult(fault, call, emu.config, gateway);
  if (fault === null && cache !== null && isSuccess(result.status) && result.chunks === undefined) {
    emu.cache.set(cache.key, { status: result.status, headers: result.headers, body: result.body, usage: result.usage }, cache.ttl);
  }
  return { result, cacheStatus: "MISS", failed: !isSuccess(result.status), fault: fault?.id };
}

/** One provider request (a plain route, or one Universal step), with retries. */
async function runStep(emu, gatewayId, gateway, step) {
  const call = prepareCall(step.route, step.headers, step.parsed);
  const who = { provider: call.provider, model: call.model };
  if (call.error) return { ...who, result: call.error, failed: true };
  const policy = retryPolicy(step.headers, step.config);
  const cache = cachePlan(gatewayId, gateway, step.headers, call, step.rawBody);
  let outcome;
  for (let attempt = 1; ; attempt++) {
    outcome = await attemptOnce(emu, gateway, step, call, cache, policy.timeoutMs);
    const retry = outcome.timedOut || (outcome.failed && isRetryable(outcome.result.status));
    if (!retry || attempt >= policy.attempts) break;
    await sleep(retryDelay(policy, attempt));
  }
  return { ...who, ...outcome };
}

function lowerCaseHeaders(headers) {
  const out = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    out[name.toLowerCase()] = typeof value === "string" ? value : JSON.stringify(value);
  }
  return out;
}

/** Universal endpoint: steps in order, next one only when the previous failed; cf-aig-step. */
async function runUniversal(emu, gatewayId, gateway, request) {
  const { json, parseError } = request.parsed;
  const steps = Array.isArray(json) ? json : json && typeof json === "object" && !parseError ? [json] : null;
  if (steps === null || steps.length === 0) return { result: gatewayErrorResult(2996) };
  let outcome;
  for (let i = 0; i < steps.length; i++) {
    const s = steps[i];
    if (s === null || typeof s !== "object" || typeof s.provider !== "string" || typeof s.endpoint !== "string") {
      outcome = { result: gatewayErrorResult(2996, undefined, `step ${i}: provider and endpoint are required`), failed: true, step: i };
      continue;
    }
    const endpoint = s.endpoint.replace(/^\/+/, "");
    const route = resolveRoute([s.provider, ...endpoint.split("/")]);
    if (route === null || route.universal) {
      outcome = { result: gatewayErrorResult(2990), failed: true, step: i };
      continue;
    }
    // Precedence: step headers > outer request headers (cf-contract.md 2.4).
    const headers = { ...request.headers, ...lowerCaseHeaders(s.headers) };
    const metadata = headers["cf-aig-metadata"] === request.headers["cf-aig-metadata"]
      ? request.metadata
      : (parseMetadata(headers["cf-aig-metadata"]).value ?? request.metadata);
    outcome = {
      ...(await runStep(emu, gatewayId, gateway, {
        route,
        headers,
        parsed: { json: s.query, parseError: false },
        rawBody: JSON.stringify(s.query ?? null),
        path: `${request.path.replace(/\/+$/, "")}/${s.provider}/${endpoint}`,
        metadata,
        config: s.config ?? {},
      })),
      step: i,
    };
    if (!outcome.failed) break;
  }
  return outcome;
}

function allowsRate(emu, gatewayId, gateway) {
  if (gateway.rateLimit.limit <= 0 || gateway.rateLimit.interval <= 0) return true;
  return emu.limiterFor(gatewayId, gateway).allow();
}

async function decide(emu, req, request, segments) {
  const [account, gatewayId, ...rest] = segments;
  const config = emu.config;
  const gateway = account === config.accountId && Object.hasOwn(config.gateways, gatewayId ?? "")
    ? config.gateways[gatewayId]
    : undefined;
  if (gateway === undefined) return { result: gatewayErrorResult(2001) };
  const base = { gateway };
  if (gateway.authentication && !gatewayTokenAccepted(gateway, request.headers)) {
    return { ...base, result: gatewayErrorResult(2009) };
  }
  const route = resolveRoute(rest);
  if (route === null) return { ...base, result: gatewayErrorResult(2990) };
  if (req.method !== "POST") {
    const result = gatewayErrorResult(2991);
    result.headers.allow = "POST";
    return { ...base, result };
  }
  const metadata = parseMetadata(request.headers["cf-aig-metadata"]);
  if (metadata.error) return { ...base, result: gatewayErrorResult(2992, undefined, metadata.error) };
  request.metadata = metadata.value;
  const customCost = parseCustomCost(request.headers["cf-aig-custom-cost"]);
  if (customCost.error) return { ...base, result: gatewayErrorResult(2993, undefined, customCost.error) };
  request.customCost = customCost.value;
  if (!allowsRate(emu, gatewayId, gateway)) return { ...base, result: gatewayErrorResult(2003) };
  const outcome = route.universal
    ? await runUniversal(emu, gatewayId, gateway, request)
    : await runStep(emu, gatewayId, gateway, { route, headers: request.headers, parsed: request.parsed, rawBody: request.rawBody, path: request.path, metadata: request.metadata });
  return { ...base, ...outcome };
}

function loggedBody(rawBody, parsed) {
  if (rawBody === "") return null;
  if (!parsed.parseError) return parsed.json;
  return rawBody.length > MAX_LOGGED_BODY_CHARS ? rawBody.slice(0, MAX_LOGGED_BODY_CHARS) : rawBody;
}

/** Handles one request under /v1/; `segments` are the decoded path segments after /v1/. */
export async function handleGateway(emu, req, res, path, segments) {
  const started = Date.now();
  const logId = ulid(started);
  const rawBody = await readBody(req);
  const parsed = parseBody(rawBody);
  const request = { headers: req.headers, rawBody, parsed, path, metadata: null, customCost: null };
  const outcome = await decide(emu, req, request, segments);
  const { result } = outcome;
  const usage = result.usage ?? null;
  const entry = {
    logId,
    time: started,
    method: req.method,
    path,
    headers: req.headers,
    body: loggedBody(rawBody, parsed),
    status: result.status,
    cacheStatus: outcome.cacheStatus ?? null,
    provider: outcome.provider ?? null,
    model: outcome.model ?? (typeof parsed.json?.model === "string" ? parsed.json.model : null),
    stream: result.chunks !== undefined,
    step: outcome.step ?? null,
    fault: outcome.fault ?? null,
    metadata: request.metadata,
    customCost: request.customCost,
    cost: costOf(request.customCost, usage),
    usage,
    collected: collectsLog(outcome.gateway, req.headers),
    delivery: "pending",
    durationMs: null,
  };
  // Logged before the first byte goes out, so a client that has its answer always finds it.
  emu.log.push(entry);
  const extra = { "cf-aig-log-id": logId, "cf-aig-request-id": logId };
  if (outcome.cacheStatus) extra["cf-aig-cache-status"] = outcome.cacheStatus;
  if (outcome.step !== undefined) extra["cf-aig-step"] = String(outcome.step);
  entry.delivery = await writeResult(res, result, extra, emu.config.streamChunkDelayMs);
  entry.durationMs = Date.now() - started;
}
