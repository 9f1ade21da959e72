// In-memory state, all bounded: request log ring, fault queue, response cache, rate limiters,
// stored Responses API responses, the last answers (a stream's chunks with the time each was sent).
import type {
  CachedResponse,
  EmulatorConfig,
  Fault,
  FaultQuery,
  FaultSpec,
  GatewayConfig,
  JsonObject,
  LogEntry,
  Metadata,
  RateLimit,
  RateLimitTechnique,
  RecordedAnswer,
  StoredResponse,
} from "./types";

export const REQUEST_LOG_CAPACITY = 5000;
export const ANSWER_LOG_CAPACITY = 256;
const CACHE_CAPACITY = 2000;
const PROMPT_CACHE_CAPACITY = 10_000;
const RESPONSE_STORE_CAPACITY = 10_000;
const SLIDING_WINDOW_MAX_LIMIT = 1_000_000; // the sliding limiter keeps one timestamp per allowed request

interface CacheEntry extends CachedResponse {
  /** Epoch milliseconds. */
  expires: number;
}

/** Ring buffer of request log entries, oldest first. */
export class RequestLog {
  readonly capacity: number;
  private items: (LogEntry | undefined)[] = [];
  private start = 0;
  private size = 0;

  constructor(capacity = REQUEST_LOG_CAPACITY) {
    this.capacity = capacity;
    this.clear();
  }

  clear(): void {
    this.items = new Array<LogEntry | undefined>(this.capacity);
    this.start = 0;
    this.size = 0;
  }

  push(entry: LogEntry): void {
    if (this.size < this.capacity) {
      this.items[(this.start + this.size) % this.capacity] = entry;
      this.size++;
    } else {
      this.items[this.start] = entry;
      this.start = (this.start + 1) % this.capacity;
    }
  }

  list(): LogEntry[] {
    const out = new Array<LogEntry>(this.size);
    // The `size` slots from `start` on are always filled.
    for (let i = 0; i < this.size; i++) out[i] = this.items[(this.start + i) % this.capacity] as LogEntry;
    return out;
  }
}

/**
 * The last answers, by log id, as the client got them: a buffered body, or a stream's chunks with
 * when each was handed to the socket. What a test reads the provider's usage from (to price it),
 * and what a test or `make bench` compares with when each event reached the client.
 */
export class AnswerLog {
  private answers = new Map<string, RecordedAnswer>();

  constructor(readonly capacity = ANSWER_LOG_CAPACITY) {}

  /** Keeps `answer` (a stream's chunks are filled as they are sent); the oldest is dropped. */
  record(logId: string, answer: RecordedAnswer): void {
    this.answers.set(logId, answer);
    if (this.answers.size > this.capacity) {
      const oldest = this.answers.keys().next().value;
      if (oldest !== undefined) this.answers.delete(oldest);
    }
  }

  get(logId: string): RecordedAnswer | undefined {
    return this.answers.get(logId);
  }

  clear(): void {
    this.answers.clear();
  }
}

function metadataMatches(wanted: JsonObject | undefined, actual: Metadata | null | undefined): boolean {
  if (wanted === undefined) return true;
  if (actual === null || actual === undefined) return false;
  return Object.entries(wanted).every(([k, v]) => String(actual[k]) === String(v));
}

/**
 * Registered faults, consumed in registration order: the first one whose `match` fits the
 * request fires and loses one of its `times` (-1 = until cleared).
 */
export class FaultBook {
  private faults: Fault[] = [];
  private nextId = 1;

  add(spec: FaultSpec): string {
    const fault = { ...spec, id: `fault_${this.nextId++}`, match: spec.match ?? {}, times: spec.times ?? 1 };
    this.faults.push(fault);
    return fault.id;
  }

  clear(): void {
    this.faults = [];
  }

  list(): readonly Fault[] {
    return this.faults;
  }

  /** info: {models: [names the request's model goes by], provider, path, metadata}. */
  take(info: FaultQuery): Fault | null {
    if (this.faults.length === 0) return null;
    const models: readonly unknown[] = info.models;
    for (const [i, fault] of this.faults.entries()) {
      const m = fault.match;
      if (m.model !== undefined && !models.includes(m.model)) continue;
      if (m.provider !== undefined && m.provider !== info.provider) continue;
      // String(): what includes() does with a non-string argument anyway.
      if (m.path !== undefined && !info.path.includes(String(m.path))) continue;
      if (!metadataMatches(m.metadata, info.metadata)) continue;
      if (fault.times > 0 && --fault.times === 0) this.faults.splice(i, 1);
      return fault;
    }
    return null;
  }
}

/** TTL cache of buffered responses. Insertion-ordered Map: the oldest entry goes first when full. */
export class ResponseCache {
  readonly capacity: number;
  private readonly entries = new Map<string, CacheEntry>();

  constructor(capacity = CACHE_CAPACITY) {
    this.capacity = capacity;
  }

  get(key: string, now: number = Date.now()): CacheEntry | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expires <= now) {
      this.entries.delete(key);
      return undefined;
    }
    return entry;
  }

  set(key: string, value: CachedResponse, ttlSeconds: number, now: number = Date.now()): void {
    this.entries.delete(key);
    if (this.entries.size >= this.capacity) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(key, { ...value, expires: now + ttlSeconds * 1000 });
  }

  clear(): void {
    this.entries.clear();
  }
}

/**
 * Anthropic prompt-cache prefixes that have been written: key -> expiry (epoch ms). A read
 * refreshes the expiry, as Anthropic's cache does; the oldest entry goes first when full.
 */
export class PromptCache {
  readonly capacity: number;
  private readonly entries = new Map<string, number>();

  constructor(capacity = PROMPT_CACHE_CAPACITY) {
    this.capacity = capacity;
  }

  /** Whether `key` is cached; a hit extends its life by `ttlMs`. */
  hit(key: string, ttlMs: number, now: number = Date.now()): boolean {
    const expires = this.entries.get(key);
    if (expires === undefined) return false;
    if (expires <= now) {
      this.entries.delete(key);
      return false;
    }
    this.write(key, ttlMs, now);
    return true;
  }

  write(key: string, ttlMs: number, now: number = Date.now()): void {
    const previous = this.entries.get(key) ?? 0;
    this.entries.delete(key);
    if (this.entries.size >= this.capacity) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(key, Math.max(previous, now + ttlMs));
  }

  clear(): void {
    this.entries.clear();
  }
}

/**
 * Responses API responses kept for `previous_response_id` (stored unless `store: false`), keyed
 * per gateway: a response id from one gateway is unknown on another. The oldest goes first when
 * full; a kept response still reaches the turns before it (StoredResponse.previous).
 */
export class ResponseStore {
  readonly capacity: number;
  private readonly entries = new Map<string, StoredResponse>();
  /** Code interpreter containers a response created, per gateway (a later request may name one). */
  private readonly containers = new Set<string>();

  constructor(capacity = RESPONSE_STORE_CAPACITY) {
    this.capacity = capacity;
  }

  get(gatewayId: string, id: string): StoredResponse | undefined {
    return this.entries.get(`${gatewayId}\u0000${id}`);
  }

  set(gatewayId: string, response: StoredResponse): void {
    if (this.entries.size >= this.capacity) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(`${gatewayId}\u0000${response.id}`, response);
  }

  addContainer(gatewayId: string, id: string): void {
    if (this.containers.size >= this.capacity) {
      const oldest = this.containers.values().next().value;
      if (oldest !== undefined) this.containers.delete(oldest);
    }
    this.containers.add(`${gatewayId}\u0000${id}`);
  }

  hasContainer(gatewayId: string, id: string): boolean {
    return this.containers.has(`${gatewayId}\u0000${id}`);
  }

  clear(): void {
    this.entries.clear();
    this.containers.clear();
  }
}

/**
 * Gateway-wide limiter. "fixed": calendar-aligned windows (bucket = floor(now / interval)).
 * "sliding": at most `limit` requests in any trailing `interval` seconds, kept as a ring of
 * the last `limit` accepted timestamps so each check is O(1). Rejected requests do not count.
 */
export class RateLimiter {
  readonly limit: number;
  readonly windowMs: number;
  readonly technique: RateLimitTechnique;
  private bucket = -1;
  private count = 0;
  /** Sliding only (empty for "fixed"): accepted timestamps, oldest at `head`. */
  private readonly ring: Float64Array;
  private head = 0;

  constructor({ limit, interval, technique }: RateLimit) {
    this.limit = limit;
    this.windowMs = interval * 1000;
    this.technique = technique;
    this.ring = new Float64Array(technique === "sliding" ? Math.min(limit, SLIDING_WINDOW_MAX_LIMIT) : 0);
  }

  get enabled(): boolean {
    return this.limit > 0 && this.windowMs > 0;
  }

  allow(now: number = Date.now()): boolean {
    if (!this.enabled) return true;
    if (this.technique === "sliding") {
      if (this.count < this.ring.length) {
        this.ring[(this.head + this.count++) % this.ring.length] = now;
        return true;
      }
      if (now - (this.ring[this.head] as number) < this.windowMs) return false; // head < ring.length
      this.ring[this.head] = now;
      this.head = (this.head + 1) % this.ring.length;
      return true;
    }
    const bucket = Math.floor(now / this.windowMs);
    if (bucket !== this.bucket) {
      this.bucket = bucket;
      this.count = 0;
    }
    if (this.count >= this.limit) return false;
    this.count++;
    return true;
  }
}

/** The whole emulator: config plus every piece of state the controls can inspect or reset. */
export interface EmulatorState {
  config: EmulatorConfig;
  log: RequestLog;
  faults: FaultBook;
  cache: ResponseCache;
  /** Anthropic prompt-caching prefixes, keyed per gateway (cleared by reset). */
  promptCache: PromptCache;
  /** Responses API responses kept for previous_response_id, per gateway (cleared by reset). */
  responses: ResponseStore;
  /** The last answers as sent, a stream's chunks with their times (GET /__emulator/answers/<logId>). */
  answers: AnswerLog;
  limiters: Map<string, RateLimiter>;
  limiterFor(gatewayId: string, gateway: GatewayConfig): RateLimiter;
  /** Swaps in a merged config; changed gateways start with fresh rate-limit windows. */
  replaceConfig(next: EmulatorConfig, changedGatewayIds: readonly string[]): void;
  reset(): void;
}

/** What a fake provider may read besides the call: config, the gateway and per-gateway state. */
export interface GenerateContext {
  config: EmulatorConfig;
  gatewayId: string;
  gateway: GatewayConfig;
  promptCache: PromptCache;
  /** Stored Responses API responses (previous_response_id), keyed per gateway. */
  responses: ResponseStore;
}
