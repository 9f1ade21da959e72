// A request's JSON body, read within the stack's byte cap and the contract's shape bounds (how
// deep it nests, how many items one array or object holds) before it is parsed: a body past
// them is a 400 (413 for bytes) before anything is admitted, and nothing later can overflow a
// stack on it (JSON.stringify recurses; a 10,000-deep tool schema was a 500 after admission).

import { MAX_JSON_DEPTH, MAX_JSON_ITEMS } from "../generated/contract";
import { MAX_REQUEST_BYTES } from "../generated/settings";
import { HttpError } from "../lib/errors";
import type { JsonBody } from "../protocol/bodies";

const decoder = new TextDecoder();

function tooLarge(): HttpError {
  return new HttpError(413, `The request body is larger than this gateway accepts (${MAX_REQUEST_BYTES} bytes).`, {
    code: "request_too_large",
  });
}

/** The body's text and bytes, read no further than MAX_REQUEST_BYTES (a declared length above it: none). */
async function boundedText(request: Request): Promise<{ text: string; bytes: number }> {
  const declared = Number(request.headers.get("content-length") ?? Number.NaN);
  if (declared > MAX_REQUEST_BYTES) throw tooLarge();
  if (request.body === null) return { text: "", bytes: 0 };
  // a declared length the runtime holds the body to: read in one go (chunked bodies are counted)
  if (Number.isFinite(declared) && declared >= 0) return { text: await request.text(), bytes: declared };
  const reader = request.body.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_REQUEST_BYTES) {
      await reader.cancel().catch(() => {});
      throw tooLarge();
    }
    parts.push(value);
  }
  if (parts.length === 1) return { text: decoder.decode(parts[0]), bytes: size };
  const all = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    all.set(part, at);
    at += part.byteLength;
  }
  return { text: decoder.decode(all), bytes: size };
}

const QUOTE = 34;
const BACKSLASH = 92;
const OPEN_OBJECT = 123;
const OPEN_ARRAY = 91;
const CLOSE_OBJECT = 125;
const CLOSE_ARRAY = 93;
const COMMA = 44;

/** The index of the quote that closes the string opened at `start` (-1: unterminated). */
function stringEnd(text: string, start: number): number {
  let end = text.indexOf('"', start + 1);
  while (end !== -1) {
    let backslashes = 0;
    while (text.charCodeAt(end - 1 - backslashes) === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return end;
    end = text.indexOf('"', end + 1);
  }
  return -1;
}

/**
 * Refuses JSON text nested deeper than MAX_JSON_DEPTH or with more than MAX_JSON_ITEMS items
 * in one array or object, measured in one pass without recursion (strings are skipped with
 * indexOf). Malformed text is left for JSON.parse to refuse.
 */
export function checkJsonShape(text: string): void {
  const items = new Uint32Array(MAX_JSON_DEPTH + 1);
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      i = stringEnd(text, i);
      if (i === -1) return;
    } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      depth++;
      if (depth > MAX_JSON_DEPTH) {
        throw new HttpError(
          400,
          `The request body nests deeper than this gateway accepts (${MAX_JSON_DEPTH} levels).`,
          {
            code: "request_too_deep",
          },
        );
      }
      items[depth] = 0;
    } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
      if (depth > 0) depth--;
    } else if (c === COMMA && depth > 0) {
      items[depth] = (items[depth] ?? 0) + 1;
      if ((items[depth] ?? 0) >= MAX_JSON_ITEMS) {
        throw new HttpError(
          400,
          `An array or object in the request body holds more than this gateway accepts (${MAX_JSON_ITEMS} items).`,
          { code: "request_too_many_items" },
        );
      }
    }
  }
}

/** The request's JSON object body; `onText` sees the text first (the log line's prompt). */
export async function readJsonBody(request: Request, onText?: (text: string) => void): Promise<JsonBody> {
  const { text, bytes } = await boundedText(request);
  onText?.(text);
  checkJsonShape(text);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new HttpError(400, "We could not parse the JSON body of your request.", { code: "invalid_json" });
  }
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw new HttpError(400, "The request body must be a JSON object.", { code: "invalid_json" });
  }
  return { body: body as Record<string, unknown>, text, bytes };
}
