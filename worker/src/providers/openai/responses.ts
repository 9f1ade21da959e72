// OpenAI's Responses API through AI Gateway (`openai/responses`), passed through: the answer
// byte for byte, the stream's typed `response.*` events one by one as they arrive. Usage is
// the terminal event's (`response.completed`, `.incomplete` or `.failed`): input (cached
// included), cached input, output (reasoning included).

import { type EventSourceMessage, jsonString, watchedEvents } from "../sse";
import type { MeteredStream, TokenUsage } from "../types";

export const RESPONSES_PATH = "openai/responses";
const TERMINAL = new Set(["response.completed", "response.incomplete", "response.failed"]);
const TEXT_DELTA = /"delta":"((?:[^"\\]|\\.)*)"/;
const SEQUENCE = /"sequence_number":(\d+)/;

interface ResponsesUsage {
  input_tokens?: unknown;
  output_tokens?: unknown;
  input_tokens_details?: { cached_tokens?: unknown; cache_write_tokens?: unknown } | null;
}

function count(value: unknown): number {
  return typeof value === "number" ? value : 0;
}

/** null when absent or malformed (the caller then estimates). */
export function readResponsesUsage(usage: unknown): TokenUsage | null {
  const u = usage as ResponsesUsage | null | undefined;
  if (!u || typeof u.input_tokens !== "number" || typeof u.output_tokens !== "number") return null;
  return {
    promptTokens: u.input_tokens,
    completionTokens: u.output_tokens,
    cachedTokens: count(u.input_tokens_details?.cached_tokens),
    cacheWriteTokens: count(u.input_tokens_details?.cache_write_tokens),
  };
}

export function responsesAnswer(raw: string): { text: string; usage: TokenUsage | null } {
  try {
    return { text: raw, usage: readResponsesUsage((JSON.parse(raw) as { usage?: unknown }).usage) };
  } catch {
    return { text: raw, usage: null }; // not JSON: passed on as it came; the cost is estimated
  }
}

/** The stream passed through event by event; usage from the terminal event, text from deltas. */
export function meterResponsesStream(upstream: ReadableStream<Uint8Array>, signal?: AbortSignal): MeteredStream {
  let usage: TokenUsage | null = null;
  let text = "";
  let ended = false; // a terminal event (or OpenAI's own error event) seen
  let sequence = -1;
  const event = (message: EventSourceMessage): void => {
    // `event:` names the type, so only the rare terminal event is parsed as JSON
    const type = message.event ?? "";
    sequence = Number(SEQUENCE.exec(message.data)?.[1] ?? sequence);
    ended ||= TERMINAL.has(type) || type === "error";
    if (type === "response.output_text.delta" || type === "response.function_call_arguments.delta") {
      const delta = TEXT_DELTA.exec(message.data)?.[1] ?? "";
      text += jsonString(delta);
    } else if (TERMINAL.has(type)) {
      try {
        usage = readResponsesUsage((JSON.parse(message.data) as { response?: { usage?: unknown } }).response?.usage);
      } catch {
        // a malformed terminal event: the stream is metered as if it had none
      }
    }
  };
  // A cut stream ends with Responses' own error event, numbered after the last one seen. Its
  // documented fields are top-level; the nested `error` too is what the openai SDKs (Python
  // and JS) raise on, as they do for a chat stream's error chunk.
  const truncated = () => {
    const message = "The model's stream ended before it was complete.";
    return `event: error\ndata: ${JSON.stringify({
      type: "error",
      code: "upstream_incomplete",
      message,
      param: null,
      sequence_number: sequence + 1,
      error: { type: "server_error", code: "upstream_incomplete", message, param: null },
    })}\n\n`;
  };
  const watch = { event, complete: () => ended, truncated };
  return watchedEvents(upstream, watch, signal, () => ({ usage, text, complete: usage !== null }));
}
