// A provider's OpenAI chat chunks (what every provider module streams, its usage chunk last) →
// Anthropic's stream events, as each arrives: message_start at the first chunk, a text block
// while text comes, a tool_use block per tool call with its arguments as input_json_delta
// pieces, the blocks closed in order, then message_delta (the stop reason, the usage in
// Anthropic's terms) and message_stop at `[DONE]`. An in-band error (a cut, a provider's
// failure) is Anthropic's `error` event, which the Anthropic SDKs raise. The meter reads the
// provider's stream underneath; this only reshapes what the client gets.

import { type EventSourceMessage, rewriteEvents } from "../../providers";
import { anthropicUsage, type ChatUsage, messageId, STOP_REASONS } from "./answer";

type Json = Record<string, unknown>;

interface Chunk {
  id?: unknown;
  choices?: {
    delta?: {
      content?: unknown;
      tool_calls?: { index?: number; id?: unknown; function?: { name?: unknown; arguments?: unknown } }[];
    };
    finish_reason?: unknown;
  }[];
  usage?: ChatUsage | null;
  error?: { message?: unknown; code?: unknown };
}

function sse(type: string, data: Json): string {
  return `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
}

export function anthropicStream(chunks: ReadableStream<Uint8Array>, model: string): ReadableStream<Uint8Array> {
  let started = false;
  let ended = false;
  let open: { kind: "text" | "tool"; index: number } | null = null;
  let blocks = 0;
  let stop = "end_turn";
  let usage: ChatUsage | null = null;
  const tools = new Map<number, number>(); // OpenAI tool-call index → Anthropic block index

  const start = (id: unknown): string => {
    if (started) return "";
    started = true;
    const message = {
      id: messageId(id),
      type: "message",
      role: "assistant",
      model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: anthropicUsage(null),
    };
    return sse("message_start", { message });
  };
  const close = (): string => {
    if (open === null) return "";
    const index = open.index;
    open = null;
    return sse("content_block_stop", { index });
  };
  const openBlock = (kind: "text" | "tool", contentBlock: Json): string => {
    const out = close();
    open = { kind, index: blocks++ };
    return out + sse("content_block_start", { index: open.index, content_block: contentBlock });
  };

  const event = (message: EventSourceMessage): string => {
    if (ended) return "";
    if (message.data === "[DONE]") {
      ended = true;
      const delta = { stop_reason: stop, stop_sequence: null };
      return `${start(null)}${close()}${sse("message_delta", { delta, usage: anthropicUsage(usage) })}${sse("message_stop", {})}`;
    }
    let chunk: Chunk;
    try {
      chunk = JSON.parse(message.data) as Chunk;
    } catch {
      return "";
    }
    if (chunk.error) {
      ended = true;
      const text =
        typeof chunk.error.message === "string" ? chunk.error.message : "The model provider failed mid-stream.";
      return sse("error", { error: { type: "api_error", message: text } });
    }
    let out = start(chunk.id);
    if (chunk.usage) usage = chunk.usage;
    const choice = chunk.choices?.[0];
    const text = choice?.delta?.content;
    if (typeof text === "string" && text !== "") {
      if (open?.kind !== "text") out += openBlock("text", { type: "text", text: "" });
      out += sse("content_block_delta", { index: open?.index, delta: { type: "text_delta", text } });
    }
    for (const call of choice?.delta?.tool_calls ?? []) {
      const k = call.index ?? 0;
      if (!tools.has(k)) {
        out += openBlock("tool", { type: "tool_use", id: call.id, name: call.function?.name, input: {} });
        tools.set(k, open?.index ?? 0);
      }
      const args = call.function?.arguments;
      if (typeof args === "string" && args !== "") {
        out += sse("content_block_delta", {
          index: tools.get(k),
          delta: { type: "input_json_delta", partial_json: args },
        });
      }
    }
    if (typeof choice?.finish_reason === "string") {
      stop = STOP_REASONS[choice.finish_reason] ?? "end_turn";
      out += close();
    }
    return out;
  };
  const truncated = () =>
    sse("error", { error: { type: "api_error", message: "The model's stream ended before it was complete." } });
  return rewriteEvents(chunks, { event, comment: () => "", complete: () => ended, truncated }, { finished: () => {} });
}
