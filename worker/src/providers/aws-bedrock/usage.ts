// Bedrock's usage (Converse's `usage`, a stream's `metadata` event) → every token kind we price.
// Like Anthropic's, `inputTokens` EXCLUDES the cache: all input = input + cache reads + cache
// writes. `cacheDetails` splits the writes by how long they are kept (5m, 1h): a 1-hour write
// has its own price, and without the split it would be billed as a 5-minute one.

import type { TokenUsage } from "../types";

export interface BedrockUsage {
  inputTokens?: unknown;
  outputTokens?: unknown;
  totalTokens?: unknown;
  cacheReadInputTokens?: unknown;
  cacheWriteInputTokens?: unknown;
  cacheDetails?: unknown;
}

function count(value: unknown): number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0 ? value : 0;
}

/** null when absent or malformed (the caller then estimates). */
export function readUsage(usage: BedrockUsage | null | undefined): TokenUsage | null {
  if (!usage || typeof usage.inputTokens !== "number" || typeof usage.outputTokens !== "number") return null;
  const read = count(usage.cacheReadInputTokens);
  const written = count(usage.cacheWriteInputTokens);
  const details = Array.isArray(usage.cacheDetails) ? usage.cacheDetails : [];
  const hour = details
    .filter((d) => (d as { ttl?: unknown })?.ttl === "1h")
    .reduce((sum: number, d) => sum + count((d as { inputTokens?: unknown }).inputTokens), 0);
  return {
    promptTokens: count(usage.inputTokens) + read + written,
    completionTokens: count(usage.outputTokens),
    cachedTokens: read,
    cacheWriteTokens: written,
    ...(hour > 0 ? { cacheWrite1hTokens: Math.min(hour, written) } : {}),
  };
}
