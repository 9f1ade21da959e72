// A key's effective policy: its tenant's settings (from the key's shard record) resolved
// against the catalog this script was rendered with. Catalog-wide facts (models, the stack's
// default model, prices) live only in the script, so changing them rewrites no KV record.

import { DEFAULT_MODEL, MODELS } from "./settings.js";

function permits(list, model) {
  return list === null || list === undefined || list.includes(model);
}

/** {user entry, org policy} from a key shard → the policy every request path reads. */
export function effectivePolicy(entry, org) {
  // Catalog ∩ org allow-list ∩ user allow-list, in catalog order.
  const allowedModels = MODELS.filter((m) => permits(org.allowedModels, m) && permits(entry.allowedModels, m));
  const preferred = org.defaultModel ?? DEFAULT_MODEL;
  const priceOverrides = {};
  for (const [model, price] of Object.entries(org.priceOverrides ?? {})) {
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
