// Spend a provider bills beyond tokens (decision 0026): its server-side tools, per call (a code
// interpreter per container), and its service tiers, a multiple of the token prices. Priced or
// refused: a request that asks for a billed tool or a tier the stack has no price for is a 400
// naming it, before anything is admitted (an org with `allowUnpriced` is charged its tokens
// only); `background` runs, whose usage comes after the request has ended, are refused unless
// the org allows them: then its ledger charges each when it ends (background-runs.ts). The worst
// case counts each tool's bound and the requested tier; what the answer reports (the calls
// made, the tier that served it) is what is charged, never more than the worst case.

import { BILLED_TOOLS, TOKEN_TOOLS } from "../generated/contract";
import { SERVICE_TIERS, TOOL_PRICES } from "../generated/settings";
import { HttpError } from "../lib/errors";
import type { Price } from "../protocol/policy";

/** What an answer reports beyond its tokens: calls per billed tool, the tier that served it. */
export interface Extras {
  tools: Record<string, number>;
  tier: string | null;
}

/** What a request may run up beyond its own tokens: the calls each billed tool may make, the
 * input tokens they may add (what they read, fed back to the model), the tier asked. */
export interface Requested {
  tools: Record<string, number>;
  inputTokens: number;
  tier: string;
  /** Where the request first asks for Anthropic's 1-hour prompt cache (its writes cost more). */
  hourCache?: string;
}

export const NO_EXTRAS: Requested = { tools: {}, inputTokens: 0, tier: "default" };

const DATED = /_(?:\d{8}|\d{4}_\d{2}_\d{2})$/;
const UNIT = 1000; // SERVICE_TIERS are thousandths

/** A tool's billing name from its `type` (web_search_20250305 → web_search); null: the client's own. */
export function toolName(type: unknown): string | null {
  if (type === undefined || type === null || type === "custom") return null;
  const name = String(type).replace(DATED, "");
  return name === "web_search_preview" ? "web_search" : name;
}

function refused(param: string, what: string): HttpError {
  return new HttpError(
    400,
    `${what} (${param}) is billed by the provider beyond tokens, and this gateway has no price for it; ` +
      "ask your platform team to price it (pricing.tools, pricing.serviceTiers, a model's cacheWrite1hInputPerMTok).",
    { param, code: "unpriced_feature" },
  );
}

function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

function positive(value: unknown): number | null {
  return typeof value === "number" && Number.isSafeInteger(value) && value > 0 ? value : null;
}

/**
 * The billed tools a request offers the model, each with the calls it may make: its own bound
 * (`max_uses`, or `maxToolCalls` for all of them), else the stack's; and the input tokens those
 * calls may add (a web fetch's own `max_content_tokens`, else the stack's bound per call). A
 * tool kind that is neither billed nor the client's own is unknown, so unpriced.
 */
function offeredTools(
  tools: unknown,
  maxToolCalls: unknown,
  allowUnpriced: boolean,
): Pick<Requested, "tools" | "inputTokens"> {
  const bounds: Record<string, number> = {};
  let inputTokens = 0;
  for (const [i, tool] of list(tools).entries()) {
    const t = (tool ?? {}) as { type?: unknown; max_uses?: unknown; max_content_tokens?: unknown };
    const type = t.type;
    const name = toolName(type);
    if (name === null || (TOKEN_TOOLS as readonly string[]).includes(name)) continue;
    const price = Object.hasOwn(TOOL_PRICES, name) ? TOOL_PRICES[name] : undefined;
    if (!price || !(BILLED_TOOLS as readonly string[]).includes(name)) {
      if (allowUnpriced) continue;
      throw refused(`tools[${i}]`, `The tool '${String(type)}'`);
    }
    const calls = Math.min(positive(t.max_uses) ?? price.maxCalls, positive(maxToolCalls) ?? Number.POSITIVE_INFINITY);
    bounds[name] = (bounds[name] ?? 0) + calls;
    inputTokens += calls * Math.min(price.inputTokens, positive(t.max_content_tokens) ?? Number.POSITIVE_INFINITY);
  }
  return { tools: bounds, inputTokens };
}

/** The tier a request asks for, priced: `auto` (or none) is the stack's `auto` tier. */
function askedTier(tier: unknown, allowUnpriced: boolean): string {
  if (tier === undefined || tier === null || tier === "auto") return "auto";
  const name = String(tier) === "standard_only" ? "standard" : String(tier);
  if (Object.hasOwn(SERVICE_TIERS, name) || allowUnpriced) return name;
  throw refused("service_tier", `The service tier '${name}'`);
}

function hourTtl(block: unknown): boolean {
  const control = (block as { cache_control?: { ttl?: unknown } } | null)?.cache_control;
  return control?.ttl === "1h";
}

/** Where a Messages request first marks a block for the 1-hour cache: its param path, or undefined. */
export function hourCacheAt(body: Record<string, unknown>): string | undefined {
  if (hourTtl(body)) return "cache_control";
  for (const [i, block] of list(body.system).entries()) if (hourTtl(block)) return `system[${i}].cache_control`;
  for (const [i, tool] of list(body.tools).entries()) if (hourTtl(tool)) return `tools[${i}].cache_control`;
  for (const [i, message] of list(body.messages).entries()) {
    const content = (message as { content?: unknown } | null)?.content;
    for (const [k, block] of list(content).entries()) {
      if (hourTtl(block)) return `messages[${i}].content[${k}].cache_control`;
    }
  }
  return undefined;
}

function pricesHourCache(price: Price): boolean {
  return price.cacheWrite1h !== undefined && (!price.long || price.long.cacheWrite1h !== undefined);
}

/**
 * The models that may serve a request, as far as a 1-hour cache write is priced for them: the
 * request is refused when its model has no such price, and a fallback without one never serves it.
 */
export function hourCacheModels(
  asked: Requested,
  models: readonly string[],
  priceOf: (model: string) => Price,
  allowUnpriced: boolean,
): string[] {
  if (asked.hourCache === undefined || allowUnpriced) return [...models];
  const priced = models.filter((model) => pricesHourCache(priceOf(model)));
  if (priced[0] !== models[0]) throw refused(asked.hourCache, "A 1-hour prompt cache write");
  return priced;
}

/** What a request of a route kind may spend beyond tokens, or the 400 of what has no price. */
export function requested(kind: string, body: Record<string, unknown>, allowUnpriced: boolean): Requested {
  if (kind === "responses" && body.background === true) {
    if (!allowUnpriced) {
      throw new HttpError(
        400,
        "Background runs (background) are billed after the request has ended; this organization " +
          "does not allow them (allowUnpriced).",
        { param: "background", code: "unpriced_feature" },
      );
    }
    if (body.stream === true) {
      throw new HttpError(
        400,
        "A background run is charged when it ends, which this gateway sees by polling it: create it " +
          "without stream, and retrieve it (GET /v1/responses/{id}).",
        { param: "stream", code: "unsupported_value" },
      );
    }
  }
  const tier = askedTier(body.service_tier, allowUnpriced);
  if (kind === "chat") {
    // a search model searches once a request when asked to (web_search_options)
    const search = body.web_search_options !== undefined && body.web_search_options !== null;
    if (search && !Object.hasOwn(TOOL_PRICES, "web_search") && !allowUnpriced) {
      throw refused("web_search_options", "Web search");
    }
    const price = search ? TOOL_PRICES.web_search : undefined;
    return price ? { tools: { web_search: 1 }, inputTokens: price.inputTokens, tier } : { ...NO_EXTRAS, tier };
  }
  const hourCache = kind === "messages" ? hourCacheAt(body) : undefined;
  return { ...offeredTools(body.tools, body.max_tool_calls, allowUnpriced), tier, ...(hourCache ? { hourCache } : {}) };
}

/** An answer (or a stream's outcome) with the billed tool calls its request made: those the
 * provider does not report itself (a chat search model's one search). */
export function withTools<T extends { extras?: Extras }>(observed: T, tools: Readonly<Record<string, number>>): T {
  if (Object.keys(tools).length === 0) return observed;
  return {
    ...observed,
    extras: { tier: observed.extras?.tier ?? null, tools: { ...observed.extras?.tools, ...tools } },
  };
}

function multiplier(tier: string | null): number {
  return tier !== null && Object.hasOwn(SERVICE_TIERS, tier) ? (SERVICE_TIERS[tier] ?? UNIT) : UNIT;
}

/** µUSD of tool calls at their prices (a tool without one, allowed unpriced: nothing). */
export function toolsMicros(tools: Readonly<Record<string, number>>): number {
  let micros = 0;
  for (const [name, calls] of Object.entries(tools)) {
    const price = Object.hasOwn(TOOL_PRICES, name) ? TOOL_PRICES[name] : undefined;
    if (price) micros += calls * price.perCall;
  }
  return micros;
}

/** What a tier adds to (or, below 1, takes from) a cost at the model's own prices: rounded up. */
export function tierMicros(tokensMicros: number, tier: string | null): number {
  const extra = tokensMicros * (multiplier(tier) - UNIT);
  return extra >= 0 ? Math.ceil(extra / UNIT) : -Math.floor(-extra / UNIT);
}

/**
 * The most a request may spend beyond its tokens' worst case: its tools' bounds, and the tier it
 * asked for (`auto` at the stack's `auto` multiple: a stack whose provider account serves `auto`
 * from a dearer tier says so there, or a dearer answer is recorded at the worst case).
 */
export function worstExtraMicros(tokensWorst: number, asked: Requested): number {
  return Math.max(0, tierMicros(tokensWorst, asked.tier)) + toolsMicros(asked.tools);
}
