// Test controls under /__emulator/ (not part of AI Gateway, no auth): health, request log,
// the last answers (a stream's chunks with their send times), fault injection, runtime config, cache and
// full reset.
import type { IncomingMessage, ServerResponse } from "node:http";
import { ConfigError, maskedConfig, mergeConfig } from "./config";
import { isJsonObject, jsonResult, readBody, writeResult } from "./http";
import type { EmulatorState } from "./state";
import type { FaultSpec, JsonObject, LogEntry, Result } from "./types";

const FAULT_FIELDS = new Set([
  "match",
  "times",
  "status",
  "body",
  "headers",
  "delayMs",
  "chunkDelayMs",
  "cutAfterChunks",
  "errorAfterChunks",
  "errorEvent",
  "gatewayError",
  "resetConnection",
]);
const MATCH_FIELDS = new Set(["model", "path", "provider", "metadata"]);

class BadRequest extends Error {}

/** A log entry as the control API shows it: `time` as ISO 8601. */
type ListedEntry = Omit<LogEntry, "time"> & { time: string };

function isInteger(value: unknown): value is number {
  return Number.isInteger(value);
}

function nonNegativeInt(spec: JsonObject, field: string): void {
  const value = spec[field];
  if (value !== undefined && !(isInteger(value) && value >= 0)) {
    throw new BadRequest(`fault.${field} must be an integer >= 0`);
  }
}

function validateFault(spec: unknown): FaultSpec {
  if (!isJsonObject(spec)) throw new BadRequest("fault must be a JSON object");
  for (const field of Object.keys(spec)) {
    if (!FAULT_FIELDS.has(field)) throw new BadRequest(`fault.${field} is not a known field`);
  }
  if (spec.match !== undefined) {
    if (!isJsonObject(spec.match)) throw new BadRequest("fault.match must be an object");
    for (const field of Object.keys(spec.match)) {
      if (!MATCH_FIELDS.has(field)) throw new BadRequest(`fault.match.${field} is not a known field`);
    }
    if (spec.match.metadata !== undefined && !isJsonObject(spec.match.metadata)) {
      throw new BadRequest("fault.match.metadata must be an object");
    }
  }
  if (spec.times !== undefined && !(isInteger(spec.times) && (spec.times >= 1 || spec.times === -1))) {
    throw new BadRequest("fault.times must be an integer >= 1, or -1 for until cleared");
  }
  if (spec.status !== undefined && !(isInteger(spec.status) && spec.status >= 200 && spec.status <= 599)) {
    throw new BadRequest("fault.status must be an HTTP status 200-599");
  }
  if (spec.headers !== undefined && !isJsonObject(spec.headers)) {
    throw new BadRequest("fault.headers must be an object");
  }
  if (spec.gatewayError !== undefined && !isInteger(spec.gatewayError)) {
    throw new BadRequest("fault.gatewayError must be an integer code");
  }
  if (spec.resetConnection !== undefined && spec.resetConnection !== true) {
    throw new BadRequest("fault.resetConnection must be true");
  }
  for (const field of ["delayMs", "chunkDelayMs", "cutAfterChunks", "errorAfterChunks"]) nonNegativeInt(spec, field);
  if (spec.errorEvent !== undefined && spec.errorEvent !== "error" && spec.errorEvent !== "response.failed") {
    throw new BadRequest('fault.errorEvent must be "error" or "response.failed"');
  }
  // Every FaultSpec field was checked above (the spec itself is kept: GET lists it as sent).
  return spec as FaultSpec;
}

function parseJson(raw: string): unknown {
  try {
    return JSON.parse(raw === "" ? "{}" : raw);
  } catch {
    throw new BadRequest("body is not valid JSON");
  }
}

/**
 * Log entries, newest last, filtered by ?metadata.<key>=, provider=, model=, status=,
 * gatewayId=, binding=, path= (substring) and ?limit=.
 */
function listRequests(emu: EmulatorState, query: URLSearchParams): ListedEntry[] {
  let entries = emu.log.list();
  for (const [name, value] of query) {
    if (name.startsWith("metadata.")) {
      const key = name.slice("metadata.".length);
      entries = entries.filter(
        (e) => e.metadata !== null && e.metadata[key] !== undefined && String(e.metadata[key]) === value,
      );
    } else if (
      name === "provider" ||
      name === "model" ||
      name === "status" ||
      name === "gatewayId" ||
      name === "binding"
    ) {
      entries = entries.filter((e) => String(e[name]) === value);
    } else if (name === "path") {
      entries = entries.filter((e) => e.path.includes(value));
    }
  }
  const limit = Number(query.get("limit"));
  if (Number.isInteger(limit) && limit >= 0 && query.has("limit")) entries = limit === 0 ? [] : entries.slice(-limit);
  return entries.map((e) => ({ ...e, time: new Date(e.time).toISOString() }));
}

async function route(emu: EmulatorState, req: IncomingMessage, name: string, query: URLSearchParams): Promise<Result> {
  const method = req.method;
  /** The 405 answer when the request's method is not one of `methods`, else null. */
  const denied = (...methods: string[]): Result | null => {
    if (method === undefined || !methods.includes(method)) {
      return jsonResult(405, { error: `${method} not allowed on /__emulator/${name}` }, { allow: methods.join(", ") });
    }
    return null;
  };
  if (name.startsWith("answers/")) {
    const refused = denied("GET");
    if (refused) return refused;
    const logId = name.slice("answers/".length);
    const answer = emu.answers.get(logId);
    if (answer === undefined) return jsonResult(404, { error: `no recorded answer for log id ${logId}` });
    return jsonResult(200, { logId, ...answer });
  }
  switch (name) {
    case "health":
      return denied("GET") ?? jsonResult(200, { ok: true });
    case "requests": {
      const refused = denied("GET", "DELETE");
      if (refused) return refused;
      if (method === "DELETE") {
        emu.log.clear();
        return jsonResult(200, { ok: true });
      }
      return jsonResult(200, { requests: listRequests(emu, query) });
    }
    case "faults": {
      const refused = denied("GET", "POST", "DELETE");
      if (refused) return refused;
      if (method === "DELETE") {
        emu.faults.clear();
        return jsonResult(200, { ok: true });
      }
      if (method === "GET") return jsonResult(200, { faults: emu.faults.list() });
      return jsonResult(200, { id: emu.faults.add(validateFault(parseJson(await readBody(req)))) });
    }
    case "config": {
      const refused = denied("GET", "POST");
      if (refused) return refused;
      if (method === "POST") {
        const { config, changed } = mergeConfig(emu.config, parseJson(await readBody(req)));
        emu.replaceConfig(config, changed);
      }
      return jsonResult(200, maskedConfig(emu.config));
    }
    case "cache": {
      const refused = denied("DELETE");
      if (refused) return refused;
      emu.cache.clear();
      return jsonResult(200, { ok: true });
    }
    case "reset": {
      const refused = denied("POST");
      if (refused) return refused;
      emu.reset();
      return jsonResult(200, { ok: true });
    }
    default:
      return jsonResult(404, { error: `unknown control endpoint /__emulator/${name}` });
  }
}

/** Handles /__emulator/<name>. */
export async function handleControl(
  emu: EmulatorState,
  req: IncomingMessage,
  res: ServerResponse,
  name: string,
  query: URLSearchParams,
): Promise<void> {
  let result: Result;
  try {
    result = await route(emu, req, name, query);
  } catch (err) {
    if (!(err instanceof BadRequest || err instanceof ConfigError)) throw err;
    result = jsonResult(400, { error: err.message });
  }
  await writeResult(res, result, {});
}
