// What a served request is recorded as: its reported usage priced, never believed blindly.

import { costMicros } from "./pricing";
import type { ChatCall, TokenUsage } from "./providers/types";
import type { Outcome } from "./quota";
import { estimatePromptTokens, estimateTokens, implausibleUsage } from "./usage";

/** What a request was admitted for: the most it can have used and cost. */
export interface Bound {
  promptTokens: number;
  completionTokens: number;
  micros: number;
}

/**
 * What to record for a served request: the reported usage, else an estimate from the text.
 * Never believed blindly: usage no request can have (negative, fractional, not finite) counts
 * as none, and no request is recorded above the worst case it was admitted for; both are
 * flagged as estimated and logged.
 */
export function outcomeOf(
  reported: TokenUsage | null,
  call: ChatCall,
  text: string,
  cached: boolean,
  bound: Bound,
): Outcome {
  const problem = reported ? implausibleUsage({ ...reported }) : null;
  const usage = problem === null ? reported : null;
  const tokens = usage ?? {
    promptTokens: estimatePromptTokens(call.body),
    completionTokens: estimateTokens(text),
    cachedTokens: 0,
    cacheWriteTokens: 0,
  };
  let cost = cached ? 0 : costMicros(tokens, call.price); // an AI Gateway cache HIT costs nothing
  let { promptTokens, completionTokens } = tokens;
  const overBound = cost > bound.micros;
  if (overBound) {
    cost = bound.micros;
    promptTokens = Math.min(promptTokens, bound.promptTokens);
    completionTokens = Math.min(completionTokens, bound.completionTokens);
  }
  if (problem !== null || (overBound && usage !== null)) {
    const reason = problem ?? `usage costs more than the admitted worst case (${bound.micros} µUSD)`;
    console.error(
      JSON.stringify({ event: "upstream_usage_rejected", requestId: call.requestId, model: call.model, reason }),
    );
  }
  return {
    cost,
    tokensIn: promptTokens,
    tokensOut: completionTokens,
    estimated: usage === null || overBound,
    cached,
    count: true,
  };
}
