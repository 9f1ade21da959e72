// The local Workers Analytics Engine dataset: miniflare's own is a no-op, so this one (a
// wrapped binding, worker/local/runtime.ts) checks each data point against Cloudflare's
// documented limits, as the real binding does, and keeps the last points in memory, where
// test renders read them (/__test/analytics). Limits: developers.cloudflare.com/analytics/
// analytics-engine/limits (20 blobs, 20 doubles, one index of at most 96 bytes, 16 KB of blobs).

const MAX_BLOBS = 20;
const MAX_DOUBLES = 20;
const MAX_INDEX_BYTES = 96;
const MAX_BLOB_BYTES = 16 * 1024;
const KEPT = 10_000;

/**
 * A string's UTF-8 size, as TextEncoder would encode it (a lone surrogate as U+FFFD), without
 * encoding it: this runs for every blob of every request in the local runtime.
 * @param {string} text
 */
function utf8Length(text) {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code < 0xdc00 && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 4; // a surrogate pair
      i += 1;
    } else bytes += 3;
  }
  return bytes;
}

/** @param {unknown} value */
function byteLength(value) {
  if (value === null) return 0;
  if (typeof value === "string") return utf8Length(value);
  if (value instanceof ArrayBuffer) return value.byteLength;
  if (ArrayBuffer.isView(value)) return value.byteLength;
  throw new TypeError(`Analytics Engine blobs and indexes are strings, ArrayBuffers or null (got ${typeof value})`);
}

/** @param {{ indexes?: unknown[]; blobs?: unknown[]; doubles?: unknown[] }} point */
function check(point) {
  const { indexes = [], blobs = [], doubles = [] } = point ?? {};
  if (indexes.length > 1) throw new RangeError("Analytics Engine takes one index per data point");
  if (indexes.length === 1 && byteLength(indexes[0]) > MAX_INDEX_BYTES) {
    throw new RangeError(`An Analytics Engine index is at most ${MAX_INDEX_BYTES} bytes`);
  }
  if (blobs.length > MAX_BLOBS) throw new RangeError(`Analytics Engine takes at most ${MAX_BLOBS} blobs`);
  if (doubles.length > MAX_DOUBLES) throw new RangeError(`Analytics Engine takes at most ${MAX_DOUBLES} doubles`);
  const size = blobs.reduce((sum, blob) => sum + byteLength(blob), 0);
  if (size > MAX_BLOB_BYTES) throw new RangeError(`Analytics Engine blobs are at most ${MAX_BLOB_BYTES} bytes in all`);
  for (const value of doubles) {
    if (typeof value !== "number") throw new TypeError("Analytics Engine doubles are numbers");
  }
  return { indexes: [...indexes], blobs: [...blobs], doubles: [...doubles] };
}

/** @type {{ dataset: string; at: number; indexes: unknown[]; blobs: unknown[]; doubles: unknown[] }[]} */
const points = [];

/** @param {{ dataset: string }} env */
export default function localDataset(env) {
  return {
    /** @param {{ indexes?: unknown[]; blobs?: unknown[]; doubles?: unknown[] }} point */
    writeDataPoint(point) {
      points.push({ dataset: env.dataset, at: Date.now(), ...check(point) });
      // dropped in blocks (a splice per write would move the whole array every time)
      if (points.length >= 2 * KEPT) points.splice(0, points.length - KEPT);
    },
    /** Local only: the points written so far (newest last). */
    localPoints() {
      return points.slice();
    },
  };
}
