// Workers AI's usage (OpenAI's field names; `prompt_tokens` is all input, no prompt cache).

import type { TokenUsage } from "../types";

interface WorkersAIUsage {
  prompt_tokens?: unknown;
  completion_tokens?: unknown;
}

/** null when absent or malformed (the caller then estimates). */
export function readUsage(usage: unknown): TokenUsage | null {
  const u = usage as WorkersAIUsage | null | undefined;
  if (!u || typeof u.prompt_tokens !== "number" || typeof u.completion_tokens !== "number") return null;
  return { promptTokens: u.prompt_tokens, completionTokens: u.completion_tokens, cachedTokens: 0, cacheWriteTokens: 0 };
}

/** The same counts as OpenAI reports them to the client. */
export function openaiUsage(tokens: TokenUsage) {
  return {
    prompt_tokens: tokens.promptTokens,
    completion_tokens: tokens.completionTokens,
    total_tokens: tokens.promptTokens + tokens.completionTokens,
  };
}
