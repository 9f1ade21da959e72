// Bounded estimates of the prompt (for the worst-case reservation) and of text (when upstream
// reports no usage). Each provider reads its own reported usage (worker/src/providers/*/usage.ts).

import type { ChatBody, JsonBody } from "../protocol/bodies";

const encoder = new TextEncoder();

// An image costs tokens by its size, not by the bytes of its URL. Upper bound of one image in
// OpenAI's dearest scheme (gpt-4o-mini, 2048×2048 high detail: 2,833 + 8 tiles × 5,667).
const IMAGE_TOKENS_BOUND = 48_200;
// Providers add a system prompt of their own for tools and structured output (Anthropic's
// tool-use prompt is 313-346 tokens; an Anthropic JSON answer is a tool too).
const TOOLS_OVERHEAD_TOKENS = 1_024;
// Parts that cost tokens by their size, not their bytes: images, and documents/files (a PDF's
// pages are images too; bounded here like one image each: an approximation), wherever they
// sit in the body. Counted in the JSON text: a quote escaped inside a string never matches.
const MEDIA_PART = /"type"\s*:\s*"(?:image|image_url|input_image|document|input_file|file)"/g;
const WALK_DEPTH = 12; // request bodies nest a few levels; deeper is not a part a provider reads

function textOf(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content.map((part) => (typeof part?.text === "string" ? part.text : "")).join("");
  }
  return "";
}

function bytes(text: string): number {
  return encoder.encode(text).length;
}

function mediaParts(text: string): number {
  MEDIA_PART.lastIndex = 0;
  let count = 0;
  while (MEDIA_PART.exec(text) !== null) count++;
  return count;
}

function strings(value: unknown, depth = 0): string {
  if (typeof value === "string") return value;
  if (depth > WALK_DEPTH || value === null || typeof value !== "object") return "";
  return Object.values(value)
    .map((item) => strings(item, depth + 1))
    .join("");
}

/**
 * An upper bound of a request's input tokens, from its whole body, whatever its fields: a token
 * is at least one byte of the JSON (a provider's framing of each message included), each media
 * part at most IMAGE_TOKENS_BOUND, and the provider's own prompt when tools or a structured
 * format are given. A part the gateway does not understand is bounded by its bytes, never
 * skipped.
 */
export function inputTokensBound(request: JsonBody, { tools }: { tools: boolean }): number {
  return 3 + request.bytes + (tools ? TOOLS_OVERHEAD_TOKENS : 0) + IMAGE_TOKENS_BOUND * mediaParts(request.text);
}

/** The four-bytes-per-token guess of a request part's text (its strings), when no usage came. */
export function estimateInputTokens(input: unknown): number {
  return 3 + estimateTokens(strings(input));
}

/** The usual four-bytes-per-token guess, used only when upstream reports no usage. */
export function estimateTokens(text: string): number {
  return Math.ceil(bytes(text) / 4);
}

export function estimatePromptTokens(body: ChatBody): number {
  return (
    3 +
    body.messages.reduce<number>((sum, m) => sum + 4 + estimateTokens(textOf((m as { content?: unknown })?.content)), 0)
  );
}

/** Why reported usage cannot be real (a negative, fractional or non-finite count), or null. */
export function implausibleUsage(usage: Readonly<Record<string, number>>): string | null {
  for (const [field, value] of Object.entries(usage)) {
    if (!Number.isSafeInteger(value) || value < 0) return `${field} is ${value}`;
  }
  return null;
}
