// Deterministic fake model: the reply text, token counts and embedding vectors.
//
// Rules (the Worker's tests rely on them exactly):
//  * Messages are normalised to {role, text}: text is the string content, or the concatenation
//    of the content parts' texts: a `text` part its text, an Anthropic `tool_use` block the
//    JSON of its `input`, a `tool_result` block the text of its `content` (other parts add
//    nothing). Anthropic's `system` counts as one leading message when present.
//  * prompt_tokens = 3 + sum over messages of (4 + ceil(utf8_bytes(text) / 4)); tool
//    definitions, when given, add one more such "message" whose text is their JSON
//    (see toolsPromptTokens; they do not change the reply's seed).
//  * Planned reply length: 12 words, or N when the LAST user message contains
//    `emulate:tokens=N` (N capped at 100000 to bound memory).
//  * With tools and an automatic tool choice the model calls the first tool, or the one named
//    by `emulate:tool=NAME` in the LAST user message (`emulate:tool=none`: it answers in words):
//    how a test steers an agent (Claude Code offers a dozen tools) to one tool or to words.
//  * With a provider-run web search tool offered (Anthropic's web_search_*, the Responses API's
//    web_search*), the model searches N times first when the LAST user message says
//    `emulate:search=N` (at most the tool's max_uses, and MAX_SEARCHES): the usage reports
//    the calls, as the providers bill them.
//  * A background Responses run completes `emulate:run_ms=N` after it was queued (200 ms when
//    the LAST user message says nothing): how a test holds a run open.
//  * Words come from WORDS, picked by a PRNG seeded with SHA-256(model, roles, texts), so the
//    same request always gets the same reply; `model` is the name WITHOUT the provider prefix,
//    so compat `anthropic/x` and native `x` agree. Text = words joined by single spaces.
//  * Each word is exactly one completion token. A max-tokens cap below the planned length
//    truncates the reply and the finish reason becomes "length" (else "stop").
//  * Embeddings: 8 dims per input; value i = (uint16_i - 32768) / 32768 over SHA-256(model,
//    text), exact in float32 so float and base64 encodings agree. Input tokens of a string =
//    ceil(utf8_bytes / 4); of a token array = its length.
import { createHash } from "node:crypto";
import { prop } from "./http";
import type { NormalizedMessage } from "./types";

/** A message reduced to what the fake model reads. */

export type FinishReason = "stop" | "length";

export interface Completion {
  words: string[];
  text: string;
  finishReason: FinishReason;
  promptTokens: number;
  completionTokens: number;
}

/** One embedding input: a string or a token array. */
export type EmbeddingItem = string | number[];

export const DEFAULT_REPLY_WORDS = 12;
// Each embedding model's vector size (OpenAI's and Workers AI's docs); unknown models: 1536.
const EMBEDDING_DIMS: Readonly<Record<string, number>> = {
  "text-embedding-3-small": 1536,
  "text-embedding-3-large": 3072,
  "text-embedding-ada-002": 1536,
  "@cf/baai/bge-small-en-v1.5": 384,
  "@cf/baai/bge-base-en-v1.5": 768,
  "@cf/baai/bge-large-en-v1.5": 1024,
  "@cf/baai/bge-m3": 1024,
};
const DEFAULT_EMBEDDING_DIMS = 1536;

/** A model's vector size; `dimensions` shortens text-embedding-3 vectors as OpenAI does. */
export function embeddingDims(model: string | null, dimensions?: unknown): number {
  const name = (model ?? "").replace(/^openai\//, "");
  const native = EMBEDDING_DIMS[name] ?? DEFAULT_EMBEDDING_DIMS;
  const shortened = name.startsWith("text-embedding-3") && typeof dimensions === "number";
  return shortened && Number.isInteger(dimensions) && dimensions >= 1 && dimensions <= native ? dimensions : native;
}
const MAX_REPLY_WORDS = 100_000;
const TOKENS_DIRECTIVE = /emulate:tokens=(\d+)/;
const TOOL_DIRECTIVE = /emulate:tool=([A-Za-z0-9_.:-]+)/;
const SEARCH_DIRECTIVE = /emulate:search=(\d+)/;
const MAX_SEARCHES = 20;
const RUN_DIRECTIVE = /emulate:run_ms=(\d+)/;
const DEFAULT_RUN_MS = 200;
const MAX_RUN_MS = 60_000;
// biome-ignore format: a word grid reads better than one word per line
const WORDS = [
  "amber", "birch", "cedar", "delta", "ember", "fjord", "glade", "harbor",
  "island", "juniper", "kestrel", "lagoon", "meadow", "nectar", "orchid", "pebble",
  "quartz", "river", "summit", "thistle", "umber", "valley", "willow", "yarrow",
  "zephyr", "acorn", "breeze", "canyon", "dune", "estuary", "fern", "granite",
  "heather", "iris", "jasper", "kelp", "lichen", "maple", "north", "oak",
  "prairie", "quill", "reed", "sparrow", "tide", "upland", "vista", "wren",
  "arbor", "basin", "cove", "dawn", "echo", "flint", "grove", "hollow",
  "inlet", "jade", "knoll", "lark", "moss", "nimbus", "otter", "pine",
];

/** The text one content part contributes (text, Anthropic tool_use input JSON, tool_result content). */
export function partText(part: unknown): string {
  const text = prop(part, "text");
  if (typeof text === "string") return text;
  const type = prop(part, "type");
  if (type === "tool_use") return JSON.stringify(prop(part, "input") ?? {});
  if (type === "tool_result") return textOf(prop(part, "content"));
  return "";
}

/** Text of an OpenAI / Anthropic message content: string, or the parts' texts concatenated. */
export function textOf(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  const parts: readonly unknown[] = content;
  let text = "";
  for (const part of parts) text += partText(part);
  return text;
}

/** ceil(utf8 bytes / 4): the token count of a text that is not made of words. */
export function byteTokens(text: string): number {
  return Math.ceil(Buffer.byteLength(text, "utf8") / 4);
}

/** What tool definitions add to the prompt: 4 + byteTokens(JSON), or 0 without tools. */
export function toolsPromptTokens(tools: unknown): number {
  return Array.isArray(tools) && tools.length > 0 ? 4 + byteTokens(JSON.stringify(tools)) : 0;
}

export function normalizeMessages(messages: readonly unknown[], system?: unknown): NormalizedMessage[] {
  const out: NormalizedMessage[] = [];
  if (system !== undefined && system !== null) out.push({ role: "system", text: textOf(system) });
  for (const m of messages) out.push({ role: String(prop(m, "role") ?? ""), text: textOf(prop(m, "content")) });
  return out;
}

export function promptTokens(normalized: readonly NormalizedMessage[]): number {
  let total = 3;
  for (const m of normalized) total += 4 + byteTokens(m.text);
  return total;
}

export function lastUserText(normalized: readonly NormalizedMessage[]): string {
  for (let i = normalized.length - 1; i >= 0; i--) {
    const m = normalized[i];
    if (m?.role === "user") return m.text;
  }
  return "";
}

/** The tool an automatic tool choice calls (see the rules above); undefined: words. */
export function autoTool<T extends { name: string }>(
  tools: readonly T[],
  normalized: readonly NormalizedMessage[],
): T | undefined {
  const named = TOOL_DIRECTIVE.exec(lastUserText(normalized))?.[1];
  if (named === "none") return undefined;
  return tools.find((tool) => tool.name === named) ?? tools[0];
}

/** How many web searches the model runs before it answers (`emulate:search=N`), at most `limit`. */
export function plannedSearches(normalized: readonly NormalizedMessage[], limit = MAX_SEARCHES): number {
  const match = SEARCH_DIRECTIVE.exec(lastUserText(normalized));
  return match ? Math.min(Number(match[1]), limit, MAX_SEARCHES) : 0;
}

/** How long a background run takes before it completes (`emulate:run_ms=N`; 200 ms otherwise). */
export function plannedRunMs(normalized: readonly NormalizedMessage[]): number {
  const match = RUN_DIRECTIVE.exec(lastUserText(normalized));
  return match ? Math.min(Number(match[1]), MAX_RUN_MS) : DEFAULT_RUN_MS;
}

function plannedWords(normalized: readonly NormalizedMessage[]): number {
  for (let i = normalized.length - 1; i >= 0; i--) {
    const m = normalized[i];
    if (m?.role !== "user") continue;
    const match = TOKENS_DIRECTIVE.exec(m.text);
    return match ? Math.min(Number(match[1]), MAX_REPLY_WORDS) : DEFAULT_REPLY_WORDS;
  }
  return DEFAULT_REPLY_WORDS;
}

// `salt` separates independent draws from the same request (e.g. one per tool); "" is the reply.
function seedOf(model: string | null, normalized: readonly NormalizedMessage[], salt = ""): number {
  const hash = createHash("sha256").update(String(model ?? ""));
  for (const m of normalized) hash.update(`\u0000${m.role}\u0000${m.text}`);
  if (salt !== "") hash.update(`\u0001${salt}`);
  return hash.digest().readUInt32LE(0);
}

// mulberry32: tiny, fast, good enough to spread words; determinism is all we need.
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A PRNG for one request, independent of the reply's (distinct `salt`): same request, same draws. */
export function requestRng(model: string | null, normalized: readonly NormalizedMessage[], salt: string): () => number {
  return prng(seedOf(model, normalized, salt));
}

/** `count` words of the fake model's vocabulary drawn from `next`, joined by single spaces. */
export function randomWords(next: () => number, count: number): string {
  const words = new Array<string>(count);
  for (let i = 0; i < count; i++) words[i] = WORDS[Math.floor(next() * WORDS.length)] ?? "";
  return words.join(" ");
}

/** `maxTokens` when it is an integer >= 0 below `tokens` (the answer gets cut there), else null. */
export function capOf(maxTokens: unknown, tokens: number): number | null {
  return typeof maxTokens === "number" && Number.isInteger(maxTokens) && maxTokens >= 0 && maxTokens < tokens
    ? maxTokens
    : null;
}

/**
 * The completion for normalised messages. `maxTokens` (optional, integer) caps the words;
 * `promptExtra` adds to prompt_tokens (tool definitions).
 * Returns {words, text, finishReason: "stop"|"length", promptTokens, completionTokens}.
 */
export function complete(
  normalized: readonly NormalizedMessage[],
  model: string | null,
  maxTokens: unknown,
  promptExtra = 0,
): Completion {
  const planned = plannedWords(normalized);
  const cap = capOf(maxTokens, planned);
  const capped = cap !== null;
  const count = cap ?? planned;
  const next = prng(seedOf(model, normalized));
  const words = new Array<string>(count);
  // next() < 1, so the index is always in range and the "" never used.
  for (let i = 0; i < count; i++) words[i] = WORDS[Math.floor(next() * WORDS.length)] ?? "";
  return {
    words,
    text: words.join(" "),
    finishReason: capped ? "length" : "stop",
    promptTokens: promptTokens(normalized) + promptExtra,
    completionTokens: count,
  };
}

/** Streaming pieces of a completion: the first word bare, every later word with a leading space. */
export function pieces(completion: Completion): string[] {
  return completion.words.map((w, i) => (i === 0 ? w : ` ${w}`));
}

/** Embedding inputs as a list: a string, a list of strings, a token array or a list of those. */
export function embeddingInputs(input: unknown): EmbeddingItem[] | null {
  if (typeof input === "string") return [input];
  if (!Array.isArray(input) || input.length === 0) return null;
  const items: unknown[] = input;
  if (items.every(isInteger)) return [items];
  if (items.every((x): x is EmbeddingItem => typeof x === "string" || (Array.isArray(x) && x.every(isInteger)))) {
    return items;
  }
  return null;
}

// Number.isInteger as a type guard (the lib's version is not one).
function isInteger(value: unknown): value is number {
  return Number.isInteger(value);
}

export function embeddingTokens(item: EmbeddingItem): number {
  return typeof item === "string" ? Math.ceil(Buffer.byteLength(item, "utf8") / 4) : item.length;
}

/** A deterministic unit vector of `dims` values for a model and an input. */
export function embeddingVector(model: string | null, item: EmbeddingItem, dims = embeddingDims(model)): number[] {
  const text = typeof item === "string" ? item : JSON.stringify(item);
  const vector = new Array<number>(dims);
  let digest = Buffer.alloc(0);
  for (let i = 0; i < dims; i++) {
    if (i % 16 === 0) {
      digest = createHash("sha256")
        .update(`${String(model ?? "")}\u0000${text}\u0000${i}`)
        .digest();
    }
    vector[i] = (digest.readUInt16LE((i % 16) * 2) - 32768) / 32768;
  }
  const norm = Math.hypot(...vector) || 1;
  return vector.map((x) => Math.fround(x / norm)); // float32 values, as the base64 form carries
}

/** Little-endian float32 bytes in base64, the OpenAI `encoding_format: "base64"` payload. */
export function vectorBase64(vector: number[]): string {
  return Buffer.from(new Float32Array(vector).buffer).toString("base64");
}
