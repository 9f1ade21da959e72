// The Worker's bindings (provision/deploy/bindings.py declares them for Pulumi and the local runtime)
// and what the request pipeline keeps on Hono's context.

import type { ErrorShape } from "./errors";
import type { Trace } from "./facts";
import type {
  AI_BINDING,
  ANALYTICS_BINDING,
  FAILURE_MODES,
  KV_BINDING,
  LEDGER_BINDING,
  PROVIDER_KEY_PREFIX,
} from "./generated/contract";
import type { UsageLedger } from "./ledger";

// Keyed by the generated binding names: a binding renamed in provision/stack/contract.py fails the
// type check wherever the Worker uses the old name.
export interface Env {
  [KV_BINDING]: KVNamespace;
  [LEDGER_BINDING]: DurableObjectNamespace<UsageLedger>;
  // Declared only when the catalog has Workers AI models (provision/deploy/bindings.py)
  [AI_BINDING]?: Ai<AiModelListType>;
  // One data point per request (facts.ts); optional so that a missing binding never fails one
  [ANALYTICS_BINDING]?: AnalyticsEngineDataset;
  ACCOUNT_ID: string;
  GATEWAY_ID: string;
  AI_GATEWAY_BASE_URL: string;
  ADMIN_API_KEY?: string;
  // signs budget alert webhooks (HMAC-SHA256); set when the stack declares alerts
  ALERT_WEBHOOK_SECRET?: string;
  AI_GATEWAY_TOKEN?: string;
  // PROVIDER_KEY_OPENAI, PROVIDER_KEY_WORKERS_AI, …: absent means keys stored on the gateway
  [providerKey: `${typeof PROVIDER_KEY_PREFIX}${string}`]: string | undefined;
}

/** µUSD per million tokens: input, output, input read from and written to a prompt cache (a
 * 1-hour cache's writes at their own price; none: not priced, so refused). */
export interface TokenPrices {
  in: number;
  out: number;
  cachedIn: number;
  cacheWrite: number;
  cacheWrite1h?: number;
}

/** A model's prices; `long`: every token's, when the input is above `above` tokens. */
export interface Price extends TokenPrices {
  long?: TokenPrices & { above: number };
}

/** What every request path reads about the key's principal (worker/src/policy.ts). */
export interface Policy {
  userLimitMicros: number;
  orgBudgetMicros: number;
  failureMode: (typeof FAILURE_MODES)[number];
  fallbackDailyLimitMicros: number;
  allowedModels: string[];
  defaultModel: string | null;
  cacheTtl: number;
  priceOverrides: Record<string, Price>;
  /** The tenant's aliases (the user's over the org's), looked up before the stack's. */
  aliases: Record<string, string>;
  /** The org's fallback chains, looked up before the stack's. */
  fallbacks: Record<string, string[]>;
  /** The rate tier (the user's, else the org's), or null for none. */
  rateTier: string | null;
  /** Whether the client's cf-aig-skip-cache / cf-aig-cache-ttl headers are honoured. */
  clientCacheControl: boolean;
  /** Browser origins this key's org allows (CORS); none by default. */
  corsOrigins: readonly string[];
  /** Budget alert thresholds, % of the user's limit and of the org's budget (ledger.ts). */
  alerts: AlertThresholds;
  /** The org opted in to request bodies (prompts) in its log lines (facts.ts). */
  logPrompts: boolean;
  /** The org's users may continue each other's stored Responses (stored-objects.ts). */
  shareStoredResponses: boolean;
  /** The org's requests may use billed tools and tiers the stack has no price for (billing.ts). */
  allowUnpriced: boolean;
  /** Changes whenever anything above does: part of the tenant's cache key. */
  version: string;
}

export interface AlertThresholds {
  user: readonly number[];
  org: readonly number[];
}

export interface Principal {
  hash: string;
  keyId: string;
  userId: string;
  orgId: string;
  policy: Policy;
}

/** Test-only fault injection (x-test-fault in test renders; always null in production). */
export type Fault = "ledger-down" | "settle-down" | "kv-down" | null;

export interface AppEnv {
  Bindings: Env;
  // isolate: the lease book (lease.ts); "" except in test renders, which simulate isolates
  // trace: what serve() learns of the request, for its facts (facts.ts)
  Variables: {
    requestId: string;
    principal: Principal;
    fault: Fault;
    isolate: string;
    errors: ErrorShape;
    trace: Trace;
  };
}
