// Gemini's usageMetadata → every token kind we price. promptTokenCount counts the whole prompt,
// cached tokens included (cachedContentTokenCount is part of it, as OpenAI counts cached input);
// toolUsePromptTokenCount (what a tool's results added) is input too. The output is the answer
// (candidatesTokenCount) and the thinking (thoughtsTokenCount), which Google bills as output but
// reports apart. Gemini writes no prompt cache per request: no cache-write tokens.

import type { TokenUsage } from "../types";

export interface GeminiUsage {
  promptTokenCount?: unknown;
  candidatesTokenCount?: unknown;
  thoughtsTokenCount?: unknown;
  cachedContentTokenCount?: unknown;
  toolUsePromptTokenCount?: unknown;
  totalTokenCount?: unknown;
}

function count(value: unknown): number {
  return typeof value === "number" && Number.isFinite(value) ? value : 0;
}

/** null when absent or malformed (the caller then estimates). */
export function readUsage(usage: GeminiUsage | null | undefined): TokenUsage | null {
  if (!usage || typeof usage.promptTokenCount !== "number") return null;
  const prompt = usage.promptTokenCount + count(usage.toolUsePromptTokenCount);
  return {
    promptTokens: prompt,
    completionTokens: count(usage.candidatesTokenCount) + count(usage.thoughtsTokenCount),
    cachedTokens: Math.min(count(usage.cachedContentTokenCount), prompt),
    cacheWriteTokens: 0,
  };
}

/** The same counts as OpenAI reports them to the client (thinking as reasoning tokens). */
export function openaiUsage(tokens: TokenUsage, usage: GeminiUsage | null | undefined) {
  return {
    prompt_tokens: tokens.promptTokens,
    completion_tokens: tokens.completionTokens,
    total_tokens: tokens.promptTokens + tokens.completionTokens,
    prompt_tokens_details: { cached_tokens: tokens.cachedTokens },
    completion_tokens_details: { reasoning_tokens: count(usage?.thoughtsTokenCount) },
  };
}
