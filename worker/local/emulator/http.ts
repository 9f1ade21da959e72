// HTTP plumbing: reading bodies, the in-memory "result" a handler returns, and writing it out;
// plus the JSON helpers every handler uses on parsed client bodies.
//
// Handlers never touch the socket. They return a result:
//   { status, headers, body }            buffered (body is a string)
//   { status, headers, chunks: [str] }   streamed, one res.write() per chunk
// plus optional delivery knobs { chunkDelayMs, cutAfterChunks } set by faults. Keeping results
// as plain data is what lets the cache replay them and the Universal endpoint try a step,
// inspect its status and move on, before a single byte goes to the client.
import type { IncomingMessage, ServerResponse } from "node:http";
import { gatewayErrorBody } from "./errors";
import type {
  BufferedResult,
  Delivery,
  HeaderMap,
  JsonObject,
  RequestHeaders,
  Result,
  SentChunk,
  StreamedResult,
} from "./types";

const MAX_BODY_BYTES = 32 * 1024 * 1024;
export const JSON_TYPE = "application/json"; // exact: the AI binding parses only this value
export const SSE_TYPE = "text/event-stream";

export function isJsonObject(value: unknown): value is JsonObject {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** `value?.[key]` for a parsed JSON value of unknown shape: undefined unless it is an object. */
export function prop(value: unknown, key: string): unknown {
  return value !== null && typeof value === "object" ? (value as JsonObject)[key] : undefined;
}

/** Object.entries (any non-nullish value, as JS allows) with its values typed `unknown`, not `any`. */
export function entriesOf(value: NonNullable<unknown>): [string, unknown][] {
  return Object.entries(value);
}

/** The request's headers as RequestHeaders: what node guarantees for every header we read. */
export function requestHeaders(req: IncomingMessage): RequestHeaders {
  return req.headers as RequestHeaders;
}

export class BodyTooLarge extends Error {}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Collects the request body as a UTF-8 string (empty string when there is none). */
export function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    req.on("data", (part: Buffer) => {
      size += part.length;
      if (size > MAX_BODY_BYTES) {
        reject(new BodyTooLarge(`request body over ${MAX_BODY_BYTES} bytes`));
        req.destroy();
        return;
      }
      parts.push(part);
    });
    req.on("end", () => {
      const only = parts.length === 1 ? parts[0] : undefined; // a single part needs no copy
      resolve(only !== undefined ? only.toString("utf8") : Buffer.concat(parts).toString("utf8"));
    });
    req.on("error", reject);
  });
}

export function jsonResult(status: number, value: unknown, headers: HeaderMap = {}): BufferedResult {
  return { status, headers: { "content-type": JSON_TYPE, ...headers }, body: JSON.stringify(value) };
}

export function textResult(status: number, text: string, headers: HeaderMap = {}): BufferedResult {
  return { status, headers: { "content-type": "text/plain; charset=utf-8", ...headers }, body: text };
}

export function sseResult(chunks: string[], headers: HeaderMap = {}): StreamedResult {
  return { status: 200, headers: { "content-type": SSE_TYPE, "cache-control": "no-cache", ...headers }, chunks };
}

export function gatewayErrorResult(code: number, status?: number, message?: string): BufferedResult {
  const { status: httpCode, body } = gatewayErrorBody(code, status, message);
  return jsonResult(httpCode, body);
}

function writeAsync(res: ServerResponse, chunk: string | Uint8Array): Promise<void> {
  return new Promise((resolve) => {
    res.write(chunk, () => resolve());
  });
}

function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.on("drain", done);
    res.on("close", done);
  });
}

/** Wall-clock epoch milliseconds with sub-millisecond precision (comparable across processes). */
export function wallClockMs(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * Writes a result. Returns "complete", "cut" (a fault destroyed the socket on purpose
 * mid-answer), "reset" (before any answer) or "aborted" (the client went away first).
 * `sent`, when given, gets each streamed chunk with the time it was handed to the socket.
 */
export async function writeResult(
  res: ServerResponse,
  result: Result,
  extraHeaders: HeaderMap,
  defaultChunkDelayMs = 0,
  sent?: SentChunk[],
): Promise<Exclude<Delivery, "pending">> {
  if (result.resetConnection === true) {
    res.socket?.destroy();
    return "reset";
  }
  const headers = { ...result.headers, ...extraHeaders };
  const cut = result.cutAfterChunks;
  if (result.chunks === undefined) {
    // A string body lets node send status line, headers and body in one write.
    const body = result.body ?? "";
    headers["content-length"] = String(Buffer.byteLength(body, "utf8"));
    res.writeHead(result.status, headers);
    if (cut === undefined) {
      res.end(body);
      return "complete";
    }
    // A buffered body has no chunks to count: deliver half of it, then drop the connection.
    const bytes = Buffer.from(body, "utf8");
    await writeAsync(res, bytes.subarray(0, Math.floor(bytes.length / 2)));
    res.socket?.destroy();
    return "cut";
  }
  res.writeHead(result.status, headers);
  const delay = result.chunkDelayMs ?? defaultChunkDelayMs;
  const chunks = result.chunks;
  for (const [i, chunk] of chunks.entries()) {
    if (cut !== undefined && i >= cut) break;
    if (delay > 0 && i > 0) await sleep(delay);
    if (res.destroyed) return "aborted";
    sent?.push({ at: wallClockMs(), data: chunk });
    const data = result.binary ? Buffer.from(chunk, "base64") : chunk;
    if (cut !== undefined && i === cut - 1) {
      // Wait until the last allowed chunk is handed to the kernel, so the cut lands after it.
      await writeAsync(res, data);
    } else if (!res.write(data)) {
      await drained(res);
    }
  }
  if (res.destroyed) return "aborted";
  if (cut !== undefined && cut < chunks.length) {
    if (cut === 0) res.flushHeaders();
    if (cut === 0) await new Promise((resolve) => setImmediate(resolve));
    res.socket?.destroy();
    return "cut";
  }
  res.end();
  return "complete";
}
