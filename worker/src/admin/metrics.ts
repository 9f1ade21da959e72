// GET /admin/metrics: what every tenant spent, sent, waited and hit, for a month or a range of
// days, per org, user, model, route and day. Spend against budget comes from the ledger's
// usage rows (the money); rates, latency percentiles and the breakdowns from its daily metrics
// rows (metrics.ts), summed here, so any slice's percentiles come from summed histograms.

import { COUNTERS, emptyRow } from "../ledger";
import { HttpError, jsonResponse } from "../lib/errors";
import { formatUsd } from "../lib/money";
import type { UsageRow } from "../protocol/ledger";
import { addToGroup, emptyMetrics, type MetricsRow, mergeMetrics, percentiles } from "../protocol/metrics";
import {
  type AdminCall,
  type Directory,
  type DirectoryOrg,
  ledgerCall,
  money,
  monthParam,
  orgRecord,
  tenantDirectory,
  userRecord,
} from "./data";

const DAY_PATTERN = /^\d{4}-\d{2}-\d{2}$/;
const MAX_DAYS = 93; // a quarter: the ledger keeps daily rows; a range wider than this is a report's job
const TOP_USERS = 10;
const DAY_MS = 86_400_000;

function ratio(part: number, whole: number): number {
  return whole === 0 ? 0 : Math.round((part / whole) * 10_000) / 10_000;
}

/** A metrics row as the API shows it: counts, rates, tokens, cost and latency percentiles. */
export function stats(row: MetricsRow) {
  const errors = row.errors4xx + row.errors5xx;
  return {
    requests: row.requests,
    errors,
    errors4xx: row.errors4xx,
    errors5xx: row.errors5xx,
    rateLimited: row.rateLimited,
    cacheHits: row.cacheHits,
    fallbacks: row.fallbacks,
    standIns: row.standIns,
    degraded: row.degraded,
    streams: row.streams,
    interrupted: row.interrupted,
    errorRate: ratio(errors, row.requests),
    cacheHitRate: ratio(row.cacheHits, row.requests),
    fallbackRate: ratio(row.fallbacks, row.requests),
    tokensIn: row.tokensIn,
    tokensOut: row.tokensOut,
    tokensCached: row.tokensCached,
    tokensCacheWrite: row.tokensCacheWrite,
    ...money("cost", row.costMicros),
    latencyMs: percentiles(row.latency),
    upstreamMs: percentiles(row.upstream),
    // the gateway's own time: latency minus the upstream wait
    overheadMs: percentiles(row.overhead),
    ttftMs: percentiles(row.ttft),
  };
}

interface Range {
  from: string;
  to: string;
  /** The month whose spend and budgets are shown (the month of `to`). */
  month: string;
  days: string[];
}

function parseDay(name: string, value: string): number {
  const at = Date.parse(`${value}T00:00:00Z`);
  if (!DAY_PATTERN.test(value) || Number.isNaN(at) || new Date(at).toISOString().slice(0, 10) !== value) {
    throw new HttpError(400, `'${name}' must be a UTC day as YYYY-MM-DD (got '${value}').`, {
      code: "invalid_day",
      param: name,
    });
  }
  return at;
}

/** `?month=` (default: this month) or `?from=&to=` (days, inclusive). */
export function rangeParam(query: URLSearchParams): Range {
  const from = query.get("from");
  const to = query.get("to");
  if (from === null && to === null) {
    const month = monthParam(query);
    const [year = 0, mon = 0] = month.split("-").map(Number);
    const start = Date.UTC(year, mon - 1, 1);
    const end = Date.UTC(year, mon, 1) - DAY_MS;
    return { ...spanOf(start, end), month };
  }
  if (query.get("month")) {
    throw new HttpError(400, "Give either 'month' or 'from' and 'to', not both.", {
      code: "invalid_range",
      param: "month",
    });
  }
  if (from === null || to === null) {
    throw new HttpError(400, "A range needs both 'from' and 'to' (YYYY-MM-DD).", {
      code: "invalid_range",
      param: from === null ? "from" : "to",
    });
  }
  const start = parseDay("from", from);
  const end = parseDay("to", to);
  if (end < start) {
    throw new HttpError(400, `'to' (${to}) is before 'from' (${from}).`, { code: "invalid_range", param: "to" });
  }
  if ((end - start) / DAY_MS + 1 > MAX_DAYS) {
    throw new HttpError(400, `A range is at most ${MAX_DAYS} days (got ${from} to ${to}).`, {
      code: "invalid_range",
      param: "to",
    });
  }
  return { ...spanOf(start, end), month: to.slice(0, 7) };
}

function spanOf(start: number, end: number): Omit<Range, "month"> {
  const days: string[] = [];
  for (let at = start; at <= end; at += DAY_MS) days.push(new Date(at).toISOString().slice(0, 10));
  return { from: days[0] as string, to: days[days.length - 1] as string, days };
}

/** Add each (key, row) into `groups` (summed per key). */
function addAll(groups: Map<string, MetricsRow>, rows: Iterable<[string, MetricsRow]>): void {
  for (const [key, row] of rows) addToGroup(groups, key, row);
}

function sum(rows: readonly MetricsRow[]): MetricsRow {
  const total = emptyMetrics();
  for (const row of rows) mergeMetrics(total, row);
  return total;
}

/** Keys by what they do now: active, revoked, suspended (user or org not active), expired. */
export function keyStatusCounts(directory: Directory, now: number = Date.now()) {
  const counts = { active: 0, revoked: 0, suspended: 0, expired: 0 };
  for (const key of directory.keys.values()) {
    const user = directory.users.get(key.userId);
    const org = user ? directory.orgs.get(user.orgId) : undefined;
    if (key.status === "revoked") counts.revoked += 1;
    else if (key.status !== "active" || user?.status !== "active" || org?.status !== "active") counts.suspended += 1;
    else if (key.expiresAt !== null && key.expiresAt * 1000 <= now)
      counts.expired += 1; // epoch seconds
    else counts.active += 1;
  }
  return counts;
}

function selectedOrgs(directory: Directory, query: URLSearchParams): DirectoryOrg[] {
  const orgId = query.get("org");
  const userId = query.get("user");
  if (userId !== null) {
    const user = userRecord(directory, userId);
    if (orgId !== null && orgId !== user.orgId) {
      throw new HttpError(400, `User '${userId}' is not in organization '${orgId}'.`, {
        code: "invalid_filter",
        param: "user",
      });
    }
    return [directory.orgs.get(user.orgId) as DirectoryOrg];
  }
  if (orgId !== null) return [orgRecord(directory, orgId)];
  return [...directory.orgs.values()].sort((a, b) => a.id.localeCompare(b.id));
}

export async function metrics(call: AdminCall): Promise<Response> {
  const directory = await tenantDirectory(call.env);
  const range = rangeParam(call.query);
  const onlyUser = call.query.get("user");
  const orgs = selectedOrgs(directory, call.query);
  const answers = await Promise.all(
    orgs.map(async (org) => {
      const [usage, groups] = await Promise.all([
        ledgerCall(call, org.id, "usage", (ledger) => ledger.usage({ month: range.month })),
        ledgerCall(call, org.id, "metrics", (ledger) =>
          ledger.metrics({ from: range.from, to: range.to, userId: onlyUser }),
        ),
      ]);
      return { org, usage, groups };
    }),
  );

  const totals = emptyRow("all");
  const byOrg = [];
  const byUser = [];
  const byKey = [];
  const byOrgDay = [];
  const days = new Map<string, MetricsRow>();
  const models = new Map<string, MetricsRow>();
  const routes = new Map<string, MetricsRow>();
  for (const { org, usage, groups } of answers) {
    for (const counter of COUNTERS) totals[counter] += usage.org[counter];
    const orgDays = [...groups.days];
    addAll(days, orgDays);
    addAll(models, groups.models);
    addAll(routes, groups.routes);
    byOrg.push({
      orgId: org.id,
      name: org.name,
      ...money("monthlyBudget", org.monthlyBudgetMicros),
      ...money("spent", usage.org.usedMicros),
      ...stats(sum(orgDays.map(([, row]) => row))),
    });
    const members = new Set([...Object.keys(org.users), ...Object.keys(usage.users), ...groups.users.keys()]);
    for (const userId of [...members].sort()) {
      if (userId === "" || (onlyUser !== null && userId !== onlyUser)) continue;
      const user = Object.hasOwn(org.users, userId) ? org.users[userId] : undefined;
      const spent: UsageRow | undefined = Object.hasOwn(usage.users, userId) ? usage.users[userId] : undefined;
      const limitMicros = user?.monthlyLimitMicros ?? 0;
      const spentMicros = spent?.usedMicros ?? 0;
      byUser.push({
        userId,
        orgId: org.id,
        monthlyLimitMicros: limitMicros,
        monthlyLimitUsd: formatUsd(limitMicros),
        spentMicros,
        spentUsd: formatUsd(spentMicros),
        ...stats(groups.users.get(userId) ?? emptyMetrics()),
      });
      // the user's keys with a monthly limit of their own, against it
      for (const [keyId, key] of Object.entries(user?.keys ?? {}).sort(([a], [b]) => a.localeCompare(b))) {
        if (key.monthlyLimitMicros === undefined) continue;
        const keySpent = Object.hasOwn(usage.keys, keyId) ? (usage.keys[keyId]?.usedMicros ?? 0) : 0;
        byKey.push({
          keyId,
          userId,
          orgId: org.id,
          status: key.status,
          ...money("monthlyLimit", key.monthlyLimitMicros),
          ...money("spent", keySpent),
        });
      }
    }
    for (const day of range.days) {
      byOrgDay.push({ orgId: org.id, day, ...stats(groups.days.get(day) ?? emptyMetrics()) });
    }
  }
  models.delete(""); // requests refused before a model was known
  const ranked = (groups: Map<string, MetricsRow>, name: string) =>
    [...groups]
      .sort(([a, x], [b, y]) => y.requests - x.requests || a.localeCompare(b))
      .map(([id, row]) => ({ [name]: id, ...stats(row) }));
  const topUsers = [...byUser]
    .sort((a, b) => b.spentMicros - a.spentMicros || b.requests - a.requests || a.userId.localeCompare(b.userId))
    .slice(0, TOP_USERS)
    .map(({ userId, orgId, spentMicros, requests }) => ({ userId, orgId, ...money("cost", spentMicros), requests }));

  const keyStatus = keyStatusCounts(directory);
  return jsonResponse({
    month: range.month,
    from: range.from,
    to: range.to,
    configVersion: directory.configVersion,
    orgs: directory.orgs.size,
    users: directory.users.size,
    keys: directory.keys.size,
    keyStatus,
    activeKeys: keyStatus.active,
    // the month's recorded usage (the money), for the selected orgs
    usage: {
      requests: totals.requests,
      ...money("cost", totals.usedMicros),
      tokensIn: totals.tokensIn,
      tokensOut: totals.tokensOut,
      estimated: totals.estimated,
      cached: totals.cached,
      // answered by a fallback model; by a Workers AI stand-in while AI Gateway was down
      fallbacks: totals.fallbacks,
      standIns: totals.standIns,
      // answers whose reported usage could not be real: recorded as estimated instead
      implausible: totals.implausible,
      // of the money: billed tool calls, and what service tiers added (or took) over token prices
      ...money("tools", totals.toolMicros),
      ...money("tier", totals.tierMicros),
    },
    // every request of the range, answered or refused (the daily metrics rows)
    totals: stats(sum([...days.values()])),
    byOrg,
    byUser,
    byKey,
    byModel: ranked(models, "model"),
    byRoute: ranked(routes, "route"),
    byDay: range.days.map((day) => ({ day, ...stats(days.get(day) ?? emptyMetrics()) })),
    byOrgDay,
    topUsers,
  });
}
