// A key's effective policy: its tenant's settings (from the key's shard record) resolved
// against the catalog this script was rendered with. Catalog-wide facts (models, the stack's
// default model, prices) live only in the script, so changing them rewrites no KV record.

import type { Policy, Price } from "./env";
import type { COMPILED_KEY_STATUSES } from "./generated/contract";
import { DEFAULT_MODEL, MODELS } from "./generated/settings";

/** A key's own part of its shard record. */
export interface KeyEntry {
  keyId: string;
  userId: string;
  orgId: string;
  status: (typeof COMPILED_KEY_STATUSES)[number];
  expiresAt: number | null;
  monthlyLimitMicros: number;
  allowedModels: string[] | null;
}

/** Its organization's part, stored once per org in each shard that holds its keys. */
export interface OrgPolicy {
  monthlyBudgetMicros: number;
  failureMode: Policy["failureMode"];
  fallbackDailyLimitMicros: number;
  allowedModels: string[] | null;
  defaultModel: string | null;
  cacheTtl: number;
  priceOverrides: Record<string, Price>;
}

function permits(list: readonly string[] | null, model: string): boolean {
  return list === null || list.includes(model);
}

/** {key entry, org policy} → the policy every request path reads. */
export function effectivePolicy(entry: KeyEntry, org: OrgPolicy, catalog: readonly string[] = MODELS): Policy {
  // Catalog ∩ org allow-list ∩ user allow-list, in catalog order.
  const allowedModels = catalog.filter((m) => permits(org.allowedModels, m) && permits(entry.allowedModels, m));
  const preferred = org.defaultModel ?? DEFAULT_MODEL;
  const priceOverrides: Record<string, Price> = {};
  for (const [model, price] of Object.entries(org.priceOverrides)) {
    if (allowedModels.includes(model)) priceOverrides[model] = price;
  }
  return {
    userLimitMicros: entry.monthlyLimitMicros,
    orgBudgetMicros: org.monthlyBudgetMicros,
    failureMode: org.failureMode,
    fallbackDailyLimitMicros: org.fallbackDailyLimitMicros,
    allowedModels,
    defaultModel: allowedModels.includes(preferred) ? preferred : (allowedModels[0] ?? null),
    cacheTtl: org.cacheTtl,
    priceOverrides,
  };
}
