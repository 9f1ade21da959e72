// Bounded estimates of the prompt (for the worst-case reservation) and of text (when upstream
// reports no usage). Each provider reads its own reported usage (worker/src/providers/*/usage.ts).

import type { ChatBody } from "./schemas";

const encoder = new TextEncoder();

// An image costs tokens by its size, not by the bytes of its URL. Upper bound of one image in
// OpenAI's dearest scheme (gpt-4o-mini, 2048×2048 high detail: 2,833 + 8 tiles × 5,667).
const IMAGE_TOKENS_BOUND = 48_200;
// Providers add a system prompt of their own for tools and structured output (Anthropic's
// tool-use prompt is 313-346 tokens; an Anthropic JSON answer is a tool too).
const TOOLS_OVERHEAD_TOKENS = 1_024;

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

function imageParts(messages: ChatBody["messages"]): number {
  let count = 0;
  for (const message of messages) {
    if (Array.isArray(message.content)) {
      count += message.content.filter((part) => part?.type === "image_url").length;
    }
  }
  return count;
}

/**
 * An upper bound of the prompt's tokens, for worst-case reservations: a token is at least one
 * byte of the serialized messages (plus tools and the response format, and the provider's own
 * prompt for them), each message costs a few tokens of framing, and
 * each image at most IMAGE_TOKENS_BOUND.
 */
export function promptTokensBound(body: ChatBody): number {
  const extras = [body.tools, body.response_format].filter((value) => value !== undefined);
  const serialized = JSON.stringify(body.messages) + extras.map((value) => JSON.stringify(value)).join("");
  const overhead = extras.length > 0 ? TOOLS_OVERHEAD_TOKENS : 0;
  return 3 + 4 * body.messages.length + bytes(serialized) + overhead + IMAGE_TOKENS_BOUND * imageParts(body.messages);
}

// Parts that cost tokens by their size, not their bytes: images, and documents/files (a PDF's
// pages are images too; bounded here like one image each: an approximation).
const MEDIA_TYPES = new Set(["image", "image_url", "input_image", "document", "input_file", "file"]);
const WALK_DEPTH = 12; // request bodies nest a few levels; deeper is not a part a provider reads

function mediaParts(value: unknown, depth = 0): number {
  if (depth > WALK_DEPTH || value === null || typeof value !== "object") return 0;
  if (Array.isArray(value)) return value.reduce((sum: number, item) => sum + mediaParts(item, depth + 1), 0);
  const own = MEDIA_TYPES.has(String((value as { type?: unknown }).type)) ? 1 : 0;
  return own + Object.values(value).reduce((sum: number, item) => sum + mediaParts(item, depth + 1), 0);
}

function strings(value: unknown, depth = 0): string {
  if (typeof value === "string") return value;
  if (depth > WALK_DEPTH || value === null || typeof value !== "object") return "";
  return Object.values(value)
    .map((item) => strings(item, depth + 1))
    .join("");
}

/**
 * An upper bound of the input tokens of any request part (the Responses API's input and
 * instructions, Anthropic's system and messages, embeddings' input), the same way as for chat:
 * a token is at least a byte of its JSON, media at most IMAGE_TOKENS_BOUND each, and the
 * provider's own prompt when tools or a structured format are given.
 */
export function inputTokensBound(input: unknown, { tools = false }: { tools?: boolean } = {}): number {
  const json = JSON.stringify(input ?? null);
  return 3 + bytes(json) + (tools ? TOOLS_OVERHEAD_TOKENS : 0) + IMAGE_TOKENS_BOUND * mediaParts(input);
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
  return 3 + body.messages.reduce((sum, m) => sum + 4 + estimateTokens(textOf(m.content)), 0);
}

/** Why reported usage cannot be real (a negative, fractional or non-finite count), or null. */
export function implausibleUsage(usage: Readonly<Record<string, number>>): string | null {
  for (const [field, value] of Object.entries(usage)) {
    if (!Number.isSafeInteger(value) || value < 0) return `${field} is ${value}`;
  }
  return null;
}
