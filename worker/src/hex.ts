// Bytes as lowercase hex, through a table (a map/padStart/join per byte cost more than the
// hashing it follows, on every request).

const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, "0"));

export function hex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += HEX[b] as string;
  return out;
}
