// Usage: token counts from the upstream answer, and bounded estimates of the prompt (for the
// worst-case reservation) and of text (when upstream reports no usage).

import type { Tokens } from "./pricing";
import type { ChatBody } from "./schemas";

const encoder = new TextEncoder();

// An image costs tokens by its size, not by the bytes of its URL. Upper bound of one image in
// OpenAI's dearest scheme (gpt-4o-mini, 2048×2048 high detail: 2,833 + 8 tiles × 5,667).
const IMAGE_TOKENS_BOUND = 48_200;

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
      count += message.content.filter((part) => part?.type === "image_url" || part?.type === "input_image").length;
    }
  }
  return count;
}

/**
 * An upper bound of the prompt's tokens, for worst-case reservations: a token is at least one
 * byte of the serialized messages (plus tools), each message costs a few tokens of framing, and
 * each image at most IMAGE_TOKENS_BOUND.
 */
export function promptTokensBound(body: ChatBody): number {
  const serialized = JSON.stringify(body.messages) + (body.tools ? JSON.stringify(body.tools) : "");
  return 3 + 4 * body.messages.length + bytes(serialized) + IMAGE_TOKENS_BOUND * imageParts(body.messages);
}

/** The usual four-bytes-per-token guess, used only when upstream reports no usage. */
export function estimateTokens(text: string): number {
  return Math.ceil(bytes(text) / 4);
}

export function estimatePromptTokens(body: ChatBody): number {
  return 3 + body.messages.reduce((sum, m) => sum + 4 + estimateTokens(textOf(m.content)), 0);
}

interface OpenAIUsage {
  prompt_tokens?: unknown;
  completion_tokens?: unknown;
  prompt_tokens_details?: { cached_tokens?: unknown } | null;
}

/** OpenAI `usage` → our counts (null when absent or malformed). */
export function readUsage(usage: unknown): Required<Tokens> | null {
  const u = usage as OpenAIUsage | null | undefined;
  if (!u || typeof u.prompt_tokens !== "number" || typeof u.completion_tokens !== "number") return null;
  const cached = u.prompt_tokens_details?.cached_tokens;
  return {
    promptTokens: u.prompt_tokens,
    completionTokens: u.completion_tokens,
    cachedTokens: typeof cached === "number" ? cached : 0,
  };
}
