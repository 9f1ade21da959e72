// What a Gemini model produced, read from a response or a stream chunk (parsed JSON): the text of
// every part, thoughts included, and each function call's arguments as JSON. When no usable
// usage comes back, the output is estimated from these.

type Json = Record<string, unknown>;

export interface Part {
  text?: unknown;
  thought?: unknown;
  thoughtSignature?: unknown;
  functionCall?: { name?: unknown; args?: unknown; id?: unknown };
}

export interface Candidate {
  content?: { parts?: Part[]; role?: string };
  finishReason?: unknown;
  index?: number;
}

function asObject(value: unknown): Json | null {
  return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Json) : null;
}

/** The first candidate's parts (the gateway asks for one). */
export function partsOf(response: unknown): Part[] {
  const candidates = asObject(response)?.candidates;
  const first = Array.isArray(candidates) ? (candidates[0] as Candidate | undefined) : undefined;
  const parts = first?.content?.parts;
  return Array.isArray(parts) ? parts : [];
}

/** What the parts say, thoughts and call arguments included. */
export function partsOutput(parts: readonly Part[]): string {
  let out = "";
  for (const part of parts) {
    if (typeof part.text === "string") out += part.text;
    else if (part.functionCall) out += JSON.stringify(part.functionCall.args ?? {});
  }
  return out;
}
