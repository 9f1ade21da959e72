// What a request cost, as metering found it: what the budget settles and the facts record.

/** What a served (or released) request costs and counts. */
export interface Outcome {
  cost: number;
  tokensIn: number;
  tokensOut: number;
  /** Input tokens read from / written to the provider's prompt cache (part of tokensIn). */
  tokensCached?: number;
  tokensCacheWrite?: number;
  estimated: boolean;
  cached: boolean;
  count: boolean;
  /** Answered by a fallback model, or by a Workers AI stand-in (counted by the ledger). */
  fallback?: boolean;
  standIn?: boolean;
  /** The upstream reported usage no request could have (negative, absurd): not believed. */
  implausible?: boolean;
  /** Of `cost`: billed tool calls, and a service tier's difference from the model's prices. */
  toolMicros?: number;
  tierMicros?: number;
}
