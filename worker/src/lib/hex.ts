// Bytes as lowercase hex, through a table (a map/padStart/join per byte cost more than the
// hashing it follows, on every request).

const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, "0"));

export function hex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += HEX[b] as string;
  return out;
}

/** A text's SHA-256 as hex (how keys are stored and looked up). */
export async function sha256Hex(text: string): Promise<string> {
  return hex(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text))));
}
