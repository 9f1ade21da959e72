// Answers other than plain words, shared by every wire format: a tool call's arguments and a
// structured-output document, both JSON generated from a JSON Schema (schema-sample.ts).
//
// Rules (documented in emulator.ts):
//  * The value is seeded like the reply (model + messages) plus a salt naming what is
//    generated ("tool:<name>", "json_schema:<name>"), so the same request gets the same value.
//  * Its text is the compact JSON; tokens = ceil(utf8_bytes / 4). A max-tokens cap below that
//    cuts the text to its first cap * 4 bytes (no longer valid JSON) and the finish reason
//    becomes "length", as a real model running out of tokens mid-document does.
//  * Streams send the text in pieces of PIECE_CHARS code points.
import { byteTokens, capOf, complete, type FinishReason, randomWords, requestRng } from "./completion";
import { SchemaSampler } from "./schema-sample";
import type { NormalizedMessage } from "./types";

/** A function tool the model may call: its name and its parameters' JSON Schema. */
export interface ToolDef {
  name: string;
  schema: unknown;
}

/** A JSON answer: a tool call's arguments or a structured content. */
export interface JsonAnswer {
  /** The compact JSON text, or its first cap * 4 bytes when cut. */
  text: string;
  /** The generated value (complete even when `text` was cut). */
  value: unknown;
  tokens: number;
  finishReason: FinishReason;
}

const PIECE_CHARS = 16;

/** The longest prefix of `text` (whole code points) of at most `bytes` UTF-8 bytes. */
function cutToBytes(text: string, bytes: number): string {
  let used = 0;
  let out = "";
  for (const ch of text) {
    used += Buffer.byteLength(ch, "utf8");
    if (used > bytes) break;
    out += ch;
  }
  return out;
}

/** A JSON answer for `value`, cut by `maxTokens` as the header describes. */
export function jsonAnswer(value: unknown, maxTokens: unknown): JsonAnswer {
  const full = JSON.stringify(value);
  const tokens = byteTokens(full);
  const cap = capOf(maxTokens, tokens);
  if (cap === null) return { text: full, value, tokens, finishReason: "stop" };
  return { text: cutToBytes(full, cap * 4), value, tokens: cap, finishReason: "length" };
}

/** A value valid against `schema`, seeded by the request and `salt`. */
export function sampleSchema(
  schema: unknown,
  model: string | null,
  normalized: readonly NormalizedMessage[],
  salt: string,
): unknown {
  return new SchemaSampler(schema, requestRng(model, normalized, salt), randomWords).sample();
}

/** Arguments of a call to `tool`. A tool without a schema gets `{}` (no parameters). */
export function toolArguments(
  tool: ToolDef,
  model: string | null,
  normalized: readonly NormalizedMessage[],
  maxTokens: unknown,
): JsonAnswer {
  const value = tool.schema === undefined ? {} : sampleSchema(tool.schema, model, normalized, `tool:${tool.name}`);
  return jsonAnswer(value, maxTokens);
}

/** The {"answer": "<the usual words>"} document a JSON-mode request gets. */
export function jsonObjectAnswer(
  model: string | null,
  normalized: readonly NormalizedMessage[],
  maxTokens: unknown,
): JsonAnswer {
  return jsonAnswer({ answer: complete(normalized, model, undefined).text }, maxTokens);
}

/** Stream pieces of a JSON text: PIECE_CHARS code points each (at least one piece). */
export function jsonPieces(text: string): string[] {
  const chars = [...text];
  const out: string[] = [];
  for (let i = 0; i < chars.length; i += PIECE_CHARS) out.push(chars.slice(i, i + PIECE_CHARS).join(""));
  return out.length > 0 ? out : [""];
}
