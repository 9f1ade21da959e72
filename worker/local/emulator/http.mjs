// HTTP plumbing: reading bodies, the in-memory "result" a handler returns, and writing it out.
//
// Handlers never touch the socket. They return a result:
//   { status, headers, body }            buffered (body is a string)
//   { status, headers, chunks: [str] }   streamed, one res.write() per chunk
// plus optional delivery knobs { chunkDelayMs, cutAfterChunks } set by faults. Keeping results
// as plain data is what lets the cache replay them and the Universal endpoint try a step,
// inspect its status and move on, before a single byte goes to the client.
import { gatewayErrorBody } from "./errors.mjs";

const MAX_BODY_BYTES = 32 * 1024 * 1024;
export const JSON_TYPE = "application/json"; // exact: the AI binding parses only this value
export const SSE_TYPE = "text/event-stream";

export class BodyTooLarge extends Error {}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Collects the request body as a UTF-8 string (empty string when there is none). */
export function readBody(req) {
  return new Promise((resolve, reject) => {
    const parts = [];
    let size = 0;
    req.on("data", (part) => {
      size += part.length;
      if (size > MAX_BODY_BYTES) {
        reject(new BodyTooLarge(`request body over ${MAX_BODY_BYTES} bytes`));
        req.destroy();
        return;
      }
      parts.push(part);
    });
    req.on("end", () => resolve(parts.length === 1 ? parts[0].toString("utf8") : Buffer.concat(parts).toString("utf8")));
    req.on("error", reject);
  });
}

export function jsonResult(status, value, headers = {}) {
  return { status, headers: { "content-type": JSON_TYPE, ...headers }, body: JSON.stringify(value) };
}

export function textResult(status, text, headers = {}) {
  return { status, headers: { "content-type": "text/plain; charset=utf-8", ...headers }, body: text };
}

export function sseResult(chunks, headers = {}) {
  return { status: 200, headers: { "content-type": SSE_TYPE, "cache-control": "no-cache", ...headers }, chunks };
}

export function gatewayErrorResult(code, status, message) {
  const { status: httpCode, body } = gatewayErrorBody(code, status, message);
  return jsonResult(httpCode, body);
}

function writeAsync(res, chunk) {
  return new Promise((resolve) => {
    res.write(chunk, () => resolve());
  });
}

function drained(res) {
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

/**
 * Writes a result. Returns "complete", "cut" (a fault destroyed the socket on purpose) or
 * "aborted" (the client went away first).
 */
export async function writeResult(res, result, extraHeaders, defaultChunkDelayMs = 0) {
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
  for (let i = 0; i < chunks.length; i++) {
    if (cut !== undefined && i >= cut) break;
    if (delay > 0 && i > 0) await sleep(delay);
    if (res.destroyed) return "aborted";
    if (cut !== undefined && i === cut - 1) {
      // Wait until the last allowed chunk is handed to the kernel, so the cut lands after it.
      await writeAsync(res, chunks[i]);
    } else if (!res.write(chunks[i])) {
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
