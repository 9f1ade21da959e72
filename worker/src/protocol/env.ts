// The Worker's bindings (provision/deploy/bindings.py declares them for Pulumi and the local runtime)
// and what the request pipeline keeps on Hono's context.

import type {
  AI_BINDING,
  ANALYTICS_BINDING,
  KV_BINDING,
  LEDGER_BINDING,
  PROVIDER_KEY_PREFIX,
} from "../generated/contract";
import type { ErrorShape } from "../lib/errors";
import type { LedgerRpc } from "./ledger";
import type { Principal } from "./policy";
import type { Trace } from "./trace";

// Keyed by the generated binding names: a binding renamed in provision/stack/contract.py fails the
// type check wherever the Worker uses the old name.
export interface Env {
  [KV_BINDING]: KVNamespace;
  [LEDGER_BINDING]: DurableObjectNamespace<LedgerRpc>;
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
