// OpenAI's Responses API through AI Gateway (`openai/responses`), passed through: the answer
// byte for byte, the stream's typed `response.*` events one by one as they arrive. Usage is
// the terminal event's (`response.completed`, `.incomplete` or `.failed`): input (cached
// included), cached input, output (reasoning included).

import type { Extras } from "../../pricing/extras";
import { type EventSourceMessage, outputOf, watchedEvents } from "../sse";
import type { Answer, MeteredStream, TokenUsage } from "../types";
import { DELTAS, responsesEventOutput, responsesExtras, responsesOutput } from "./output";

export const RESPONSES_PATH = "openai/responses";
const TERMINAL = new Set(["response.completed", "response.incomplete", "response.failed"]);

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

export function responsesAnswer(raw: string): Answer {
  try {
    const response = JSON.parse(raw) as { usage?: unknown };
    return {
      text: raw,
      said: responsesOutput(response),
      usage: readResponsesUsage(response.usage),
      extras: responsesExtras(response),
    };
  } catch {
    return { text: raw, said: raw, usage: null }; // not JSON: passed on as it came; the cost is estimated
  }
}

interface ResponsesEvent {
  type?: unknown;
  sequence_number?: unknown;
  response?: { id?: unknown; usage?: unknown; output?: unknown };
  item?: unknown;
}

/** The ids a stored response hands out: its own and its output items' (what a later request
 * may name as previous_response_id or in an item_reference). */
export function storedIds(response: unknown): string[] {
  const r = response as { id?: unknown; output?: unknown } | null;
  if (!r || typeof r !== "object") return [];
  const items = Array.isArray(r.output) ? r.output : [];
  return [r.id, ...items.map((item) => (item as { id?: unknown } | null)?.id)].filter(
    (id): id is string => typeof id === "string" && id !== "",
  );
}

/** The code interpreter containers a response (or one output item) ran in: ids a later
 * request may name (a code_interpreter tool's `container`). */
export function containerIds(responseOrItem: unknown): string[] {
  const r = responseOrItem as { output?: unknown } | null;
  const items = Array.isArray(r?.output) ? r.output : [responseOrItem];
  const ids = items
    .filter((item) => (item as { type?: unknown } | null)?.type === "code_interpreter_call")
    .map((item) => (item as { container_id?: unknown }).container_id);
  return [...new Set(ids.filter((id): id is string => typeof id === "string" && id !== ""))];
}

/** Ids a response hands out that a later request may name: stored ones (when it is stored), containers. */
export interface HandedOut {
  stored: string[];
  containers: string[];
}

/**
 * The stream passed through as sent (watchedEvents); usage from the terminal event, text from
 * deltas (read only when it counts).
 * `handedOut` hears the ids the response hands out: its own as soon as it is created (the meter
 * reads live until then), then, when the stream's events are read at its end, the containers
 * items name and its output items' with the terminal event.
 */
export function meterResponsesStream(
  upstream: ReadableStream<Uint8Array>,
  signal?: AbortSignal,
  handedOut?: (ids: HandedOut) => void,
): MeteredStream {
  let usage: TokenUsage | null = null;
  let extras: Extras | undefined;
  let ended = false; // a terminal event (or OpenAI's own error event) seen
  let sequence = -1;
  let created = false; // response.created read: its id is the client's from now on
  // the deltas' JSON as it came, read only when their text (or the last one's number) counts:
  // no usage came, or the stream was cut
  const deltas: string[] = [];
  let sinceParsed = 0; // deltas from this index came after the last event that was read
  const read = (raw: string): ResponsesEvent | null => {
    try {
      return JSON.parse(raw) as ResponsesEvent;
    } catch {
      return null; // malformed: metered as if it had not come
    }
  };
  /** The last well-formed event's sequence number (the deltas since the last event read first). */
  const lastSequence = (): number => {
    for (let i = deltas.length - 1; i >= sinceParsed; i--) {
      const number = read(deltas[i] as string)?.sequence_number;
      if (typeof number === "number") return number;
    }
    return sequence;
  };
  const event = (message: EventSourceMessage): void => {
    const type = message.event ?? "";
    ended ||= TERMINAL.has(type) || type === "error";
    if (DELTAS.has(type)) {
      deltas.push(message.data);
      return;
    }
    const data = read(message.data);
    if (data === null) return; // (a malformed terminal event: no usage)
    sinceParsed = deltas.length;
    if (typeof data.sequence_number === "number") sequence = data.sequence_number;
    if (type === "response.created") {
      created = true;
      handedOut?.({ stored: storedIds(data.response).slice(0, 1), containers: [] });
    }
    if (type === "response.output_item.added") {
      const containers = containerIds(data.item);
      if (containers.length > 0) handedOut?.({ stored: [], containers });
    }
    if (TERMINAL.has(type)) {
      usage = readResponsesUsage(data.response?.usage);
      extras = responsesExtras(data.response);
      handedOut?.({ stored: storedIds(data.response).slice(1), containers: containerIds(data.response) });
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
      sequence_number: lastSequence() + 1,
      error: { type: "server_error", code: "upstream_incomplete", message, param: null },
    })}\n\n`;
  };
  // read live until the response's id is handed out: its owner may use it mid-stream
  const watch = { event, live: () => handedOut !== undefined && !created && !ended, truncated, complete: () => ended };
  return watchedEvents(upstream, watch, signal, () => ({
    usage,
    get text() {
      return outputOf(deltas, responsesEventOutput);
    },
    complete: usage !== null,
    extras,
  }));
}
