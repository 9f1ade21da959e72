// In-memory state, all bounded: request log ring, fault queue, response cache, rate limiters.

export const REQUEST_LOG_CAPACITY = 5000;
const CACHE_CAPACITY = 2000;
const SLIDING_WINDOW_MAX_LIMIT = 1_000_000; // the sliding limiter keeps one timestamp per allowed request

/** Ring buffer of request log entries, oldest first. */
export class RequestLog {
  constructor(capacity = REQUEST_LOG_CAPACITY) {
    this.capacity = capacity;
    this.clear();
  }

  clear() {
    this.items = new Array(this.capacity);
    this.start = 0;
    this.size = 0;
  }

  push(entry) {
    if (this.size < this.capacity) {
      this.items[(this.start + this.size) % this.capacity] = entry;
      this.size++;
    } else {
      this.items[this.start] = entry;
      this.start = (this.start + 1) % this.capacity;
    }
  }

  list() {
    const out = new Array(this.size);
    for (let i = 0; i < this.size; i++) out[i] = this.items[(this.start + i) % this.capacity];
    return out;
  }
}

function metadataMatches(wanted, actual) {
  if (wanted === undefined) return true;
  if (actual === null || actual === undefined) return false;
  return Object.entries(wanted).every(([k, v]) => String(actual[k]) === String(v));
}

/**
 * Registered faults, consumed in registration order: the first one whose `match` fits the
 * request fires and loses one of its `times` (-1 = until cleared).
 */
export class FaultBook {
  constructor() {
    this.faults = [];
    this.nextId = 1;
  }

  add(spec) {
    const fault = { ...spec, id: `fault_${this.nextId++}`, match: spec.match ?? {}, times: spec.times ?? 1 };
    this.faults.push(fault);
    return fault.id;
  }

  clear() {
    this.faults = [];
  }

  list() {
    return this.faults;
  }

  /** info: {models: [names the request's model goes by], provider, path, metadata}. */
  take(info) {
    if (this.faults.length === 0) return null;
    for (let i = 0; i < this.faults.length; i++) {
      const fault = this.faults[i];
      const m = fault.match;
      if (m.model !== undefined && !info.models.includes(m.model)) continue;
      if (m.provider !== undefined && m.provider !== info.provider) continue;
      if (m.path !== undefined && !info.path.includes(m.path)) continue;
      if (!metadataMatches(m.metadata, info.metadata)) continue;
      if (fault.times > 0 && --fault.times === 0) this.faults.splice(i, 1);
      return fault;
    }
    return null;
  }
}

/** TTL cache of buffered responses. Insertion-ordered Map: the oldest entry goes first when full. */
export class ResponseCache {
  constructor(capacity = CACHE_CAPACITY) {
    this.capacity = capacity;
    this.entries = new Map();
  }

  get(key, now = Date.now()) {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expires <= now) {
      this.entries.delete(key);
      return undefined;
    }
    return entry;
  }

  set(key, value, ttlSeconds, now = Date.now()) {
    this.entries.delete(key);
    if (this.entries.size >= this.capacity) this.entries.delete(this.entries.keys().next().value);
    this.entries.set(key, { ...value, expires: now + ttlSeconds * 1000 });
  }

  clear() {
    this.entries.clear();
  }
}

/**
 * Gateway-wide limiter. "fixed": calendar-aligned windows (bucket = floor(now / interval)).
 * "sliding": at most `limit` requests in any trailing `interval` seconds, kept as a ring of
 * the last `limit` accepted timestamps so each check is O(1). Rejected requests do not count.
 */
export class RateLimiter {
  constructor({ limit, interval, technique }) {
    this.limit = limit;
    this.windowMs = interval * 1000;
    this.technique = technique;
    this.bucket = -1;
    this.count = 0;
    if (technique === "sliding") {
      this.ring = new Float64Array(Math.min(limit, SLIDING_WINDOW_MAX_LIMIT));
      this.head = 0;
    }
  }

  get enabled() {
    return this.limit > 0 && this.windowMs > 0;
  }

  allow(now = Date.now()) {
    if (!this.enabled) return true;
    if (this.technique === "sliding") {
      if (this.count < this.ring.length) {
        this.ring[(this.head + this.count++) % this.ring.length] = now;
        return true;
      }
      if (now - this.ring[this.head] < this.windowMs) return false;
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
