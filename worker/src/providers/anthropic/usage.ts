// Anthropic's usage → every token kind we price (cf-contract-2 §2.8, OpenAI semantics):
// Anthropic's `input_tokens` EXCLUDES cached input, so all input = input + cache writes + cache
// reads; reads are priced at `cachedIn`, writes at `cacheWrite`, the rest at `in`.

import type { Extras } from "../../pricing/extras";
import type { TokenUsage } from "../types";

export interface AnthropicUsage {
  input_tokens?: unknown;
  output_tokens?: unknown;
  cache_creation_input_tokens?: unknown;
  cache_read_input_tokens?: unknown;
  cache_creation?: unknown;
  server_tool_use?: unknown;
  service_tier?: unknown;
}

/** Server tool calls (`server_tool_use.<tool>_requests`) and the tier that served the request. */
export function readExtras(usage: AnthropicUsage | null | undefined): Extras {
  const tools: Record<string, number> = {};
  const used = usage?.server_tool_use;
  if (used && typeof used === "object") {
    for (const [field, calls] of Object.entries(used)) {
      const name = /^(.+)_requests$/.exec(field)?.[1];
      if (name && typeof calls === "number" && Number.isSafeInteger(calls) && calls > 0) tools[name] = calls;
    }
  }
  return { tools, tier: typeof usage?.service_tier === "string" ? usage.service_tier : null };
}

function count(value: unknown): number {
  return typeof value === "number" && Number.isFinite(value) ? value : 0;
}

/** null when absent or malformed (the caller then estimates). */
export function readUsage(usage: AnthropicUsage | null | undefined): TokenUsage | null {
  if (!usage || typeof usage.input_tokens !== "number" || typeof usage.output_tokens !== "number") return null;
  const written = count(usage.cache_creation_input_tokens);
  const read = count(usage.cache_read_input_tokens);
  const hour = count(
    (usage.cache_creation as { ephemeral_1h_input_tokens?: unknown } | null)?.ephemeral_1h_input_tokens,
  );
  return {
    promptTokens: usage.input_tokens + written + read,
    completionTokens: usage.output_tokens,
    cachedTokens: read,
    cacheWriteTokens: written,
    ...(hour > 0 ? { cacheWrite1hTokens: hour } : {}),
  };
}
