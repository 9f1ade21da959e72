// GET /v1/usage: what the calling key may spend, read by the key itself (no admin): the key's own
// month (and its limit, when it has one of its own), its user's month so far and what is held for requests in flight, the user's limit and what remains of it,
// and the org's the same when the org shares them (organizations[].shareOrgUsage); no other
// tenant's figures, ever. Remaining is what a new request could still be admitted against:
// the limit less what is spent and what is held.

import type { Context } from "hono";
import { windowName } from "../budget/refusals";
import { currentMonth, ledgerFor, monthResetsAt } from "../ledger";
import { HttpError, jsonResponse } from "../lib/errors";
import { formatUsd } from "../lib/money";
import type { AppEnv } from "../protocol/env";

function usd(name: string, micros: number): Record<string, number | string> {
  return { [`${name}Micros`]: micros, [`${name}Usd`]: formatUsd(micros) };
}

interface Figures {
  requests: number;
  used: number;
  held: number;
  limit: number;
  remaining: number;
}

function figures(used: number, held: number, limit: number, requests: number): Figures {
  return { requests, used, held, limit, remaining: Math.max(0, limit - used - held) };
}

/** The figures as the client reads them: each amount in µUSD and as a USD string. */
function shown({ requests, used, held, limit, remaining }: Figures) {
  return {
    requests,
    ...usd("used", used),
    ...usd("held", held),
    ...usd("limit", limit),
    ...usd("remaining", remaining),
  };
}

export async function usage(c: Context<AppEnv>): Promise<Response> {
  const { keyId, userId, orgId, policy } = c.get("principal");
  const month = currentMonth();
  const ledger = ledgerFor(c.env, orgId);
  let user: Awaited<ReturnType<typeof ledger.userUsage>>;
  let org: Awaited<ReturnType<typeof ledger.usage>> | null = null;
  try {
    [user, org] = await Promise.all([
      ledger.userUsage({ month, userId, keyId, rates: policy.spendRates }),
      policy.shareOrgUsage ? ledger.usage({ month }) : Promise.resolve(null),
    ]);
  } catch (err) {
    console.error(JSON.stringify({ event: "ledger_unavailable", error: String(err) }));
    throw new HttpError(503, "Usage cannot be read right now; try again shortly.", { code: "ledger_unavailable" });
  }
  const userFigures = figures(
    user.usedMicros,
    user.reservedMicros + user.leasedMicros,
    policy.userLimitMicros,
    user.requests,
  );
  const orgFigures = org
    ? figures(org.org.usedMicros, org.reservedMicros + org.leasedMicros, policy.orgBudgetMicros, org.org.requests)
    : null;
  const own = user.key ?? { usedMicros: 0, requests: 0, reservedMicros: 0 };
  const keyLimit = policy.keyLimitMicros;
  const keyFigures = keyLimit === null ? null : figures(own.usedMicros, own.reservedMicros, keyLimit, own.requests);
  // of the limits shown, the one that binds first (the least left; a tie names the narrowest)
  const bound: [string, Figures | null][] = [
    ["key", keyFigures],
    ["user", userFigures],
    ["org", orgFigures],
  ];
  let tightest = "user";
  let least = userFigures.remaining;
  for (const [scope, shownFigures] of bound) {
    if (shownFigures !== null && shownFigures.remaining < least) [tightest, least] = [scope, shownFigures.remaining];
  }
  if (keyFigures !== null && keyFigures.remaining <= least) tightest = "key";
  return jsonResponse({
    object: "usage",
    month,
    resetsAt: monthResetsAt(month),
    // a key without a limit of its own: what it spent, within its user's limit
    key:
      keyFigures === null
        ? { id: keyId, requests: own.requests, ...usd("used", own.usedMicros), limitMicros: null, limitUsd: null }
        : { id: keyId, ...shown(keyFigures) },
    user: { id: userId, ...shown(userFigures) },
    org: orgFigures === null ? null : { id: orgId, ...shown(orgFigures) },
    tightest,
    // the spend-rate breakers on this key and its user: each window as it stands, when it ends
    spendRates: (user.rates ?? []).map((w) => ({
      scope: w.subject.startsWith("key:") ? "key" : "user",
      window: windowName(w.spanMs),
      ...usd("used", w.used),
      ...usd("held", w.held),
      ...usd("limit", w.limit),
      ...usd("remaining", Math.max(0, w.limit - w.used - w.held)),
      resetsAt: new Date(w.resetsAt).toISOString(),
    })),
  });
}
