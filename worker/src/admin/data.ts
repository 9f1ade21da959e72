// Shared pieces of the admin API: storage access that fails as clear 503/404 errors, and the
// response shapes (every amount twice: integer µUSD `…Micros` and an exact `…Usd` string).

import { INDEX_KEY } from "../generated/contract";
import { currentMonth, ledgerFor } from "../ledger";
import { HttpError } from "../lib/errors";
import { hex } from "../lib/hex";
import { formatUsd } from "../lib/money";
import type { Env, Fault } from "../protocol/env";
import type { LedgerRpc } from "../protocol/ledger";
import { allDirectoryShards } from "../request/key-layout";

const MONTH_PATTERN = /^\d{4}-(0[1-9]|1[0-2])$/;

/** One admin request: its bindings, query and (test renders only) injected fault. */
export interface AdminCall {
  env: Env;
  request: Request;
  query: URLSearchParams;
  fault: Fault;
}

export interface DirectoryKey {
  sha256: string;
  status: string;
  expiresAt: number | null;
  /** The key's own monthly limit, when it has one. */
  monthlyLimitMicros?: number;
}

export interface DirectoryUser {
  id: string;
  orgId: string;
  email: string;
  monthlyLimitMicros: number;
  status: string;
  keys: Record<string, DirectoryKey>;
}

export interface DirectoryOrg {
  id: string;
  name: string;
  status: string;
  failureMode: string;
  monthlyBudgetMicros: number;
  fallbackDailyLimitMicros: number;
  users: Record<string, DirectoryUser>;
}

export interface Directory {
  orgs: Map<string, DirectoryOrg>;
  users: Map<string, DirectoryUser>;
  keys: Map<string, DirectoryKey & { keyId: string; userId: string }>;
  configVersion: string;
}

export interface UsageRowLike {
  requests?: number;
  usedMicros?: number;
  tokensIn?: number;
  tokensOut?: number;
  estimated?: number;
  cached?: number;
  toolMicros?: number;
  tierMicros?: number;
}

// ------------------------------------------------------------------------------ storage

function errorText(err: unknown): string {
  return String((err as Error)?.message ?? err);
}

async function kvRead(env: Env, key: string, type: "json" | "text"): Promise<unknown> {
  try {
    return type === "json" ? await env.GATEWAY_KV.get(key, "json") : await env.GATEWAY_KV.get(key, "text");
  } catch (err) {
    console.error(JSON.stringify({ event: "admin_kv_unavailable", key, error: errorText(err) }));
    throw new HttpError(503, "Tenant configuration is temporarily unavailable; try again shortly.", {
      code: "config_unavailable",
    });
  }
}

export async function kvJson<T>(env: Env, key: string): Promise<T | null> {
  return (await kvRead(env, key, "json")) as T | null;
}

async function versionOf(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return hex(new Uint8Array(digest, 0, 8));
}

/**
 * The tenant directory from every `dir:` shard (read in parallel): organizations, users and
 * keys by id in Maps (an id from a URL never walks an object prototype), and the config
 * version, the same hash `provision` computes (compiler.config_version) over what was read.
 */
export async function tenantDirectory(env: Env): Promise<Directory> {
  const names = allDirectoryShards();
  const [index, ...texts] = await Promise.all([
    kvRead(env, INDEX_KEY, "text"),
    ...names.map((n) => kvRead(env, n, "text") as Promise<string | null>),
  ]);
  if (index === null) {
    throw new HttpError(503, `The tenant index (${INDEX_KEY}) is missing: has the stack been deployed?`, {
      code: "config_unavailable",
    });
  }
  const directory: Directory = { orgs: new Map(), users: new Map(), keys: new Map(), configVersion: "" };
  let hashed = "";
  names.forEach((name, i) => {
    const text = texts[i];
    if (text === null || text === undefined) return;
    hashed += `${name}\0${text}\0`;
    const shard = JSON.parse(text as string) as { orgs: Record<string, DirectoryOrg> };
    for (const org of Object.values(shard.orgs)) {
      directory.orgs.set(org.id, org);
      for (const user of Object.values(org.users)) {
        directory.users.set(user.id, user);
        for (const [keyId, key] of Object.entries(user.keys)) {
          directory.keys.set(keyId, { ...key, keyId, userId: user.id });
        }
      }
    }
  });
  directory.configVersion = await versionOf(hashed);
  return directory;
}

/** One ledger RPC; an unreachable ledger is a 503 naming the org, never a 500. */
export async function ledgerCall<T>(
  call: AdminCall,
  orgId: string,
  method: string,
  run: (ledger: DurableObjectStub<LedgerRpc>) => Promise<T>,
): Promise<T> {
  try {
    if (call.fault === "ledger-down") throw new Error("injected: ledger unreachable");
    return await run(ledgerFor(call.env, orgId));
  } catch (err) {
    console.error(JSON.stringify({ event: "admin_ledger_unavailable", orgId, method, error: errorText(err) }));
    throw new HttpError(503, `The usage ledger of organization '${orgId}' is temporarily unavailable.`, {
      code: "ledger_unavailable",
    });
  }
}

/** `object[key]` only when it is the object's own property (ids never walk a prototype). */
export function own<T>(object: Record<string, T> | null | undefined, key: string): T | undefined {
  return object !== null && object !== undefined && Object.hasOwn(object, key) ? object[key] : undefined;
}

export function userRecord(directory: Directory, userId: string): DirectoryUser {
  const user = directory.users.get(userId);
  if (!user) throw new HttpError(404, `No user with id '${userId}'.`, { code: "user_not_found" });
  return user;
}

export function orgRecord(directory: Directory, orgId: string): DirectoryOrg {
  const org = directory.orgs.get(orgId);
  if (!org) throw new HttpError(404, `No organization with id '${orgId}'.`, { code: "organization_not_found" });
  return org;
}

export function monthParam(query: URLSearchParams): string {
  const month = query.get("month");
  if (month === null || month === "") return currentMonth();
  if (!MONTH_PATTERN.test(month)) {
    throw new HttpError(400, `'month' must be a UTC month as YYYY-MM (got '${month}').`, {
      code: "invalid_month",
      param: "month",
    });
  }
  return month;
}

// ------------------------------------------------------------------------------ shapes

export function money(name: string, micros: number): Record<string, number | string> {
  return { [`${name}Micros`]: micros, [`${name}Usd`]: formatUsd(micros) };
}

export function usageFigures(row: UsageRowLike | undefined) {
  const usedMicros = row?.usedMicros ?? 0;
  return {
    requests: row?.requests ?? 0,
    usedMicros,
    usedUsd: formatUsd(usedMicros),
    tokensIn: row?.tokensIn ?? 0,
    tokensOut: row?.tokensOut ?? 0,
    estimated: row?.estimated ?? 0,
    cached: row?.cached ?? 0,
    // of the money: billed tool calls, and what service tiers added (or took) over token prices
    ...money("tools", row?.toolMicros ?? 0),
    ...money("tier", row?.tierMicros ?? 0),
  };
}

export function allowance(name: string, limitMicros: number, usedMicros: number) {
  return { ...money(name, limitMicros), ...money("remaining", Math.max(0, limitMicros - usedMicros)) };
}

/** A user's keys: each one's status and month's figures (`rows`: the ledger's key rows, by key
 * id), and its own monthly limit with what remains of it, where it has one. */
export function keysView(user: DirectoryUser, rows: Record<string, UsageRowLike> = {}) {
  return Object.entries(user.keys)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([id, key]) => {
      const figures = usageFigures(Object.hasOwn(rows, id) ? rows[id] : undefined);
      const limit = key.monthlyLimitMicros;
      return {
        id,
        status: key.status,
        // a key without a limit of its own has no limit fields (its user's applies)
        ...(limit === undefined
          ? {}
          : { ...money("monthlyLimit", limit), ...money("remaining", Math.max(0, limit - figures.usedMicros)) }),
        usage: figures,
      };
    });
}

export function userView(user: DirectoryUser) {
  return {
    id: user.id,
    orgId: user.orgId,
    email: user.email,
    status: user.status,
    ...money("monthlyLimit", user.monthlyLimitMicros),
    keyIds: Object.keys(user.keys).sort(),
  };
}

export function orgView(org: DirectoryOrg) {
  return {
    id: org.id,
    name: org.name,
    status: org.status,
    failureMode: org.failureMode,
    ...money("monthlyBudget", org.monthlyBudgetMicros),
    ...money("fallbackDailyLimit", org.fallbackDailyLimitMicros),
  };
}

/** The org's users, by id. */
export function membersOf(org: DirectoryOrg): DirectoryUser[] {
  return Object.values(org.users).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
