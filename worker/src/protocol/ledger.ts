// What the isolates and the org's UsageLedger Durable Object say to each other: the ledger's
// RPC surface (LedgerRpc, which the class implements) and the records it takes and answers.
// Both sides import this module; neither imports the other's.
//
// Money is integer micro-dollars (µUSD). Months are UTC ("2026-11").

import type { MetricsBatch, MetricsRow } from "./metrics";

// A lease an isolate stops renewing (it died) gives its slice back this long after its last
// exchange (the ledger drops it); a live isolate renews while it has requests in flight.
export const LEASE_TTL_MS = 30_000;
// An isolate's cold-start pool (decision 0039) admits nothing later than this after the start of
// its last exchange; the ledger counts on that when it takes a user off every pool's list.
export const POOL_TTL_MS = 15_000;
// The user id a pool's hold is stored under (in the leases table): no user can have it.
export const POOL_HOLDER = "*pool";
// Pools serve a user whose limit is at least this many bands (isolates x allowance): the band a
// pooled user's own admissions leave free is then at most a twentieth of its limit.
const POOLED_FROM_BANDS = 20;

/** Whether pools may admit for a user with this limit, given its org's band (0: no pools). */
export function pooledLimit(userLimit: number, band: number): boolean {
  return band > 0 && userLimit >= POOLED_FROM_BANDS * band;
}

import type { AlertThresholds, PoolSettings, Price, SpendRateLimit } from "./policy";

export interface UsageRow {
  subject: string;
  usedMicros: number;
  requests: number;
  tokensIn: number;
  tokensOut: number;
  estimated: number;
  cached: number;
  /** Requests answered by a fallback model after the first failed. */
  fallbacks: number;
  /** Requests answered by a Workers AI stand-in while AI Gateway was down. */
  standIns: number;
  /** Requests whose reported usage could not be real (recorded as estimated, not as reported). */
  implausible: number;
  /** Of usedMicros: billed tool calls, and what service tiers added (or took) over the model's prices. */
  toolMicros: number;
  tierMicros: number;
}

/**
 * One isolate's exchange for one of its leases (a user's month): the settlements of requests
 * it admitted under the lease (their costs leave the hold and become usage), what it gives back
 * (it stopped counting on it before sending), and how much more it wants.
 */
export interface LeaseOp {
  leaseId: string;
  userId: string;
  /** Increases with each exchange of this lease: a retried exchange is applied once. */
  seq: number;
  settlements: Settlement[];
  returned: number;
  want: number;
  /** The least grant worth having; below it nothing is granted (the isolate admits per request). */
  minGrant: number;
  userLimit: number;
  orgBudget: number;
  /** A key with a monthly limit of its own: the lease is that key's, within its limit too. */
  keyId?: string;
  keyLimit?: number | null;
  /** The user's cap on open requests (its rate tier's): the lease also holds slots of it. */
  maxConcurrent?: number | null;
  /** Requests open on this lease now, and the slots it would like to hold. */
  open?: number;
  wantSlots?: number;
  /** The key's budget alert thresholds (% of the month's limit and budget). */
  alerts?: AlertThresholds;
  /** Its user's cold-start band (decision 0039): what pools may admit for it unreported. */
  poolBand?: number;
}

export interface LeaseResult extends Figures {
  leaseId: string;
  /** What the ledger now holds for this lease: all the isolate may count on. */
  held: number;
  granted: number;
  /** Open-request slots the lease holds (0 when its user has no cap, or none could be spared). */
  slots: number;
  /** Another request of its user was refused for the cap lately: give spare slots back. */
  slotPressure?: boolean;
  ttlMs: number;
}

export interface Exchange {
  month: string;
  /** The org this ledger is for (alerts name it). */
  orgId?: string;
  /** Which isolate exchanges (random per isolate): the ledger paces them by how many there are. */
  isolateId?: string;
  leases: LeaseOp[];
  /** The isolate's cold-start pool for the org (decision 0039), when it has one or wants one. */
  pool?: PoolOp | null;
  /** The id of the batch the exchange's settlements and pool reports form: applied once, as one
   * row (an unanswered exchange's batch is sent again whole, under the same id). Absent: none,
   * or an older isolate (each settlement is then claimed by its request id). */
  batch?: string;
  /** A per-request admission to run after the lease operations (near a limit). */
  admission?: Admission | null;
  /** Requests' metrics, carried along (facts.ts). */
  metrics?: MetricsBatch[];
  now?: number;
}

/** What a settlement records; `count: false` releases a reservation without a request. */
export interface Settlement {
  requestId: string;
  userId: string;
  /** The API key that made the request: its usage row (and its limit, if it has one). */
  keyId?: string;
  month: string;
  cost: number;
  tokensIn?: number;
  tokensOut?: number;
  estimated?: boolean;
  cached?: boolean;
  fallback?: boolean;
  standIn?: boolean;
  implausible?: boolean;
  /** Of `cost`: billed tool calls, and a service tier's difference from the model's prices. */
  toolMicros?: number;
  tierMicros?: number;
  count?: boolean;
  now?: number;
}

export interface Admission {
  requestId: string;
  userId: string;
  month: string;
  /** The request's worst case. */
  amount: number;
  /** The least it may be admitted for (its output cap lowered to its org's floor, budget/clamp.ts):
   * when `amount` does not fit, the headroom is reserved if it is at least this. Unset: `amount`. */
  least?: number;
  userLimit: number;
  orgBudget: number;
  /** The API key, and its own monthly limit when it has one (null: the user's alone). */
  keyId?: string;
  keyLimit?: number | null;
  /** Its spend-rate breakers (admitted per request, never from a lease). */
  rates?: readonly SpendRateLimit[];
  /** Requests the user may have open at once (its rate tier's); unset = no cap. */
  maxConcurrent?: number | null;
  orgId?: string;
  alerts?: AlertThresholds;
  /** Its user's cold-start band (decision 0039): what pools may admit for it unreported. */
  poolBand?: number;
  settlements?: Settlement[];
  now?: number;
}

/** A request an isolate admitted from its pool: at the next exchange, a reservation of its user. */
export interface PoolAdmission {
  requestId: string;
  userId: string;
  keyId?: string;
  amount: number;
  userLimit: number;
  alerts?: AlertThresholds;
}

/**
 * One isolate's cold-start pool for an org (decision 0039): a slice of the org's budget that
 * admits the first request of a user who has no lease there, up to `allowance` per user between
 * reports, for every user not on the ledger's list of those too near their limit.
 */
export interface PoolOp extends PoolSettings {
  poolId: string;
  /** Increases with each exchange of this pool: a retried exchange is applied once. */
  seq: number;
  /** Requests admitted since the last report; they become reservations before `settlements`. */
  admitted: PoolAdmission[];
  settlements: Settlement[];
  returned: number;
  want: number;
  orgBudget: number;
  /** The version of the list of users it must not admit that the isolate has. */
  deniedVersion: number;
}

export interface PoolResult {
  poolId: string;
  /** What the ledger now holds for this pool: all the isolate may admit from. */
  held: number;
  granted: number;
  ttlMs: number;
  /** The users it must not admit, when the list changed since `deniedVersion` (else absent). */
  denied?: string[];
  deniedVersion: number;
}

export interface Figures {
  userUsed: number;
  orgUsed: number;
  userReserved: number;
  orgReserved: number;
  /** The key's, when it was asked about (0 otherwise). */
  keyUsed: number;
  keyReserved: number;
}

/** A spend-rate window as it stands: what it has recorded and holds against its limit. */
export interface SpendWindow {
  /** "user:<id>" or "key:<user id>:<key id>" */
  subject: string;
  spanMs: number;
  limit: number;
  used: number;
  held: number;
  /** When it ends (epoch ms): the next window starts at zero. */
  resetsAt: number;
}

/** What one reservation holds in a spend-rate window (kept with it, released with it). */
export interface RateHold {
  subject: string;
  spanMs: number;
  start: number;
}

export interface AdmitResult extends Figures {
  admitted: boolean;
  /** What was reserved: the worst case, or less (never below `least`) when only that fits. */
  amount: number;
  limit: "key" | "user" | "org" | "rate" | "concurrency" | null;
  /** The spend-rate window that refused it (limit "rate"). */
  window?: SpendWindow;
  /** The user's open requests (reservations) before this one. */
  open: number;
}

/** Metrics summed by day, user, model and route (keys as stored; "" = none). */
export interface MetricsGroups {
  days: Map<string, MetricsRow>;
  users: Map<string, MetricsRow>;
  models: Map<string, MetricsRow>;
  routes: Map<string, MetricsRow>;
}

/** What the ledger keeps of a run to poll it and to charge it as its request would have been. */
export interface WatchedRun {
  /** The request's (attempt's) id: its reservation and its settlement. */
  requestId: string;
  responseId: string;
  orgId: string;
  userId: string;
  keyId: string;
  month: string;
  model: string;
  price: Price;
  /** The request's worst case (outcome.ts Bound): what it is charged if it cannot be seen to its end. */
  bound: { promptTokens: number; completionTokens: number; micros: number };
  estimatedPromptTokens: number;
  fallback: boolean;
  standIn: boolean;
}

/** One alert as the ledger stores it. */
export interface AlertRow {
  month: string;
  /** "org", "user:<id>" or "key:<user id>:<key id>" */
  subject: string;
  threshold: number;
  crossedAt: number;
  usedMicros: number;
  limitMicros: number;
  status: "pending" | "delivered" | "failed";
  attempts: number;
  nextAttemptAt: number;
  lastStatus: number | null;
  lastError: string | null;
  deliveredAt: number | null;
}

/** A month's figures for the org and every user, with what is held for them. */
export interface MonthUsage {
  month: string;
  org: UsageRow;
  users: Record<string, UsageRow>;
  /** Each key's row, by key id (key ids are unique in a stack); its user in `userId`. */
  keys: Record<string, UsageRow & { userId: string }>;
  openReservations: number;
  reservedMicros: number;
  /** Slices of the budget isolates hold as leases (budget/lease.ts), pools included in µUSD. */
  leases: number;
  leasedMicros: number;
  /** Isolates' cold-start pools (budget/pool.ts), and what they hold (within leasedMicros). */
  pools: number;
  pooledMicros: number;
}

export interface UserUsage extends UsageRow {
  month: string;
  reservedMicros: number;
  leasedMicros: number;
  /** The key's row and holds, when a key was named. */
  key?: UsageRow & { reservedMicros: number };
  /** The windows of the spend-rate breakers asked about. */
  rates?: SpendWindow[];
}

export interface ExchangeResult {
  leases: LeaseResult[];
  /** The pool's, when the exchange carried one (an older ledger: absent). */
  pool?: PoolResult | null;
  admission: AdmitResult | null;
  /** When this isolate should exchange next: the ledger paces all of them together. */
  nextExchangeMs: number;
}

/** The ledger's RPC methods, as an isolate calls them through its stub. */
export interface LedgerRpc extends Rpc.DurableObjectBranded {
  admit(admission: Admission): AdmitResult;
  settle(record: Settlement): Figures;
  settleBatch(args: { batch: string; records: Settlement[]; now?: number }): { applied: boolean };
  settledRows(): number;
  exchange(exchange: Exchange): ExchangeResult;
  record(args: { batches: MetricsBatch[]; isolateId?: string; now?: number }): {
    counted: number;
    nextExchangeMs: number;
  };
  watchRun(run: WatchedRun): Promise<void>;
  alerts(args: { month: string }): AlertRow[];
  metrics(args: { from: string; to: string; userId?: string | null }): MetricsGroups;
  usage(args: { month: string; now?: number }): MonthUsage;
  userUsage(args: {
    month: string;
    userId: string;
    keyId?: string;
    rates?: readonly SpendRateLimit[];
    now?: number;
  }): UserUsage;
  resetUser(args: { month: string; userId: string; now?: number }): {
    month: string;
    userId: string;
    previousMicros: number;
  };
  keepStored(args: { ids: string[]; userId: string; now?: number }): void;
  storedOwners(args: { ids: string[]; now?: number }): Record<string, string>;
  ping(): { ok: true };
}
