// Identifiers the emulator hands out: gateway log ids and provider object ids.
import { randomBytes, randomUUID } from "node:crypto";

// Crockford base32, the ULID alphabet (no I, L, O, U).
const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const TIME_CHARS = 10;
const RANDOM_GROUPS = 4; // 4 groups x 20 bits = 80 random bits = 16 chars

// randomUUID() draws from a pooled CSPRNG buffer, so it is much cheaper per call than
// randomBytes(); we strip the fixed version/variant nibbles before using its hex digits.
function randomHex(): string {
  const hex = randomUUID().replaceAll("-", "");
  return hex.slice(0, 12) + hex.slice(13, 16) + hex.slice(17);
}

/** A 26-character ULID: 48-bit millisecond time + 80 random bits, Crockford base32. */
export function ulid(now: number = Date.now()): string {
  let time = "";
  let t = now;
  // charAt: the indexes are always 0-31, and charAt is typed as a plain string.
  for (let i = 0; i < TIME_CHARS; i++) {
    time = CROCKFORD.charAt(t % 32) + time;
    t = Math.floor(t / 32);
  }
  const hex = randomHex();
  let rand = "";
  for (let g = 0; g < RANDOM_GROUPS; g++) {
    let n = parseInt(hex.slice(g * 5, g * 5 + 5), 16);
    let part = "";
    for (let j = 0; j < 4; j++) {
      part = CROCKFORD.charAt(n & 31) + part;
      n >>>= 5;
    }
    rand += part;
  }
  return time + rand;
}

/** A random lowercase-hex id of `length` characters (at most 30). */
export function randomId(length = 24): string {
  return randomHex().slice(0, length);
}

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/** A random base62 id of `length` characters (Anthropic's id alphabet). */
export function randomBase62(length: number): string {
  const bytes = randomBytes(length);
  let out = "";
  // 62 does not divide 256: the slight bias is irrelevant for ids that only need to be unique.
  for (const b of bytes) out += BASE62.charAt(b % 62);
  return out;
}
