// OpenAI's usage → every token kind we price. `prompt_tokens` includes cached input;
// `prompt_tokens_details.cached_tokens` is the part read from the prompt cache.

import type { TokenUsage } from "../types";

interface OpenAIUsage {
  prompt_tokens?: unknown;
  completion_tokens?: unknown;
  prompt_tokens_details?: { cached_tokens?: unknown; cache_write_tokens?: unknown } | null;
}

function count(value: unknown): number {
  return typeof value === "number" ? value : 0;
}

/** null when absent or malformed (the caller then estimates). */
export function readUsage(usage: unknown): TokenUsage | null {
  const u = usage as OpenAIUsage | null | undefined;
  if (!u || typeof u.prompt_tokens !== "number" || typeof u.completion_tokens !== "number") return null;
  return {
    promptTokens: u.prompt_tokens,
    completionTokens: u.completion_tokens,
    cachedTokens: count(u.prompt_tokens_details?.cached_tokens),
    cacheWriteTokens: count(u.prompt_tokens_details?.cache_write_tokens),
  };
}
