// Where tenant records live in KV: names computed from the generated contract (one source,
// provision/stack/contract.py).

import {
  DIRECTORY_SHARD_CHARS,
  DIRECTORY_SHARD_PREFIX,
  KEY_SHARD_CHARS,
  KEY_SHARD_PREFIX,
} from "../generated/contract";

/** `keys:3f` for a key whose SHA-256 starts with 3f. */
export function keyShard(sha256Hex: string): string {
  return KEY_SHARD_PREFIX + sha256Hex.slice(0, KEY_SHARD_CHARS);
}

/** Every directory shard that may exist (`dir:0` … `dir:f`). */
export function allDirectoryShards(): string[] {
  const count = 16 ** DIRECTORY_SHARD_CHARS;
  return Array.from(
    { length: count },
    (_, i) => DIRECTORY_SHARD_PREFIX + i.toString(16).padStart(DIRECTORY_SHARD_CHARS, "0"),
  );
}
