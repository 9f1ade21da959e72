// What a served request is recorded as: its reported usage priced, never believed blindly.

import { estimateTokens, implausibleUsage } from "../pricing/estimate";
import { tierMicros, toolsMicros } from "../pricing/extras";
import { costMicros, type Tokens } from "../pricing/prices";
import type { Outcome } from "../protocol/outcome";
import type { Price } from "../protocol/policy";
import type { Metered, TokenUsage } from "../providers";

/** What a request was admitted for: the most it can have used and cost. */
export interface Bound {
  promptTokens: number;
  completionTokens: number;
  micros: number;
}

/** Whose request it was, for the log line when its usage is refused. */
export interface Subject {
  requestId: string;
  model: string;
  price: Price;
  /** The prompt's tokens as estimated before sending (used when no usage came back). */
  estimatedPromptTokens: number;
}

function rejected(subject: Subject, reason: string): void {
  console.error(
    JSON.stringify({ event: "upstream_usage_rejected", requestId: subject.requestId, model: subject.model, reason }),
  );
}

/**
 * What to record for a served request. The reported usage when it can be real and is final;
 * else an estimate: no usage (or usage no request can have: negative, fractional, not finite)
 * is estimated from the prompt and the text; a stream that stopped before its final usage
 * (the client left, the upstream broke) is charged at least the output it streamed. Never
 * more than the worst case the request was admitted for (usage above it is recorded at that
 * bound). Estimates are flagged; refused usage is logged and flagged `implausible`, which the
 * ledger counts.
 */
export function outcomeOf(observed: Metered, subject: Subject, cached: boolean, bound: Bound): Outcome {
  const problem = observed.usage ? implausibleUsage({ ...observed.usage }) : null;
  if (problem !== null) rejected(subject, problem);
  const usage: TokenUsage | null = problem === null ? observed.usage : null;
  // the streamed text is read only when it counts (a meter may parse it only then)
  let tokens: Tokens;
  if (usage === null) {
    tokens = { promptTokens: subject.estimatedPromptTokens, completionTokens: estimateTokens(observed.text) };
  } else if (!observed.complete) {
    tokens = { ...usage, completionTokens: Math.max(usage.completionTokens, estimateTokens(observed.text)) };
  } else {
    tokens = usage;
  }
  // an AI Gateway cache HIT costs nothing; else the tokens, the tier's difference, the tool calls
  const tokensMicros = cached ? 0 : costMicros(tokens, subject.price);
  let tierPart = cached ? 0 : tierMicros(tokensMicros, observed.extras?.tier ?? null);
  let toolPart = cached ? 0 : toolsMicros(observed.extras?.tools ?? {});
  let cost = tokensMicros + tierPart + toolPart;
  let { promptTokens, completionTokens } = tokens;
  const overBound = cost > bound.micros;
  // reported usage no request could have had: not recorded as reported (issue 13, defect 3)
  let implausible = problem !== null;
  if (overBound) {
    if (usage !== null && observed.complete) {
      rejected(subject, `usage costs more than the admitted worst case (${bound.micros} µUSD)`);
      implausible = true;
    }
    cost = bound.micros;
    // the parts as reported, within what was recorded (tools first: they are not estimates)
    toolPart = Math.min(toolPart, cost);
    tierPart = Math.min(tierPart, cost - toolPart);
    promptTokens = Math.min(promptTokens, bound.promptTokens);
    completionTokens = Math.min(completionTokens, bound.completionTokens);
  }
  // of the input: read from and written to a provider's prompt cache (within the bound)
  const cachedTokens = Math.min(tokens.cachedTokens ?? 0, promptTokens);
  const cacheWriteTokens = Math.min(tokens.cacheWriteTokens ?? 0, promptTokens - cachedTokens);
  return {
    cost,
    tokensIn: promptTokens,
    tokensOut: completionTokens,
    tokensCached: cachedTokens,
    tokensCacheWrite: cacheWriteTokens,
    estimated: usage === null || !observed.complete || overBound,
    cached,
    count: true,
    implausible,
    toolMicros: toolPart,
    tierMicros: tierPart,
  };
}

/** What a request may cost at most, recorded as an estimate: the charge of what nobody could
 * observe to its end (a background run), never less than it may have cost. */
export function worstCaseOutcome(bound: Bound): Outcome {
  const { micros: cost, promptTokens: tokensIn, completionTokens: tokensOut } = bound;
  return { cost, tokensIn, tokensOut, estimated: true, cached: false, count: true };
}
