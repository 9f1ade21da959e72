// What a Claude model produced, read from a message or a stream event (parsed JSON, never a
// pattern over its text): text, thinking, and each tool call's input as JSON. When no usable
// usage comes back, the output is estimated from these, the same whether they came whole or
// streamed (a streamed tool input is the same JSON in pieces).

type Json = Record<string, unknown>;

function asObject(value: unknown): Json | null {
  return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Json) : null;
}

function text(value: unknown): string {
  return typeof value === "string" ? value : "";
}

/** One content block: its text or thinking, or a tool call's input as compact JSON. */
function block(value: unknown): string {
  const b = asObject(value);
  if (!b) return "";
  if (b.type === "tool_use" || b.type === "server_tool_use") return JSON.stringify(b.input ?? {});
  return text(b.text) + text(b.thinking);
}

/** A message's output, every content block. */
export function messageOutput(message: unknown): string {
  const content = asObject(message)?.content;
  return Array.isArray(content) ? content.map(block).join("") : "";
}

/** What one stream event adds: a content_block_delta's text, thinking or partial tool input. */
export function deltaOutput(event: unknown): string {
  const e = asObject(event);
  if (e?.type !== "content_block_delta") return "";
  const delta = asObject(e.delta);
  return text(delta?.text) + text(delta?.thinking) + text(delta?.partial_json);
}
