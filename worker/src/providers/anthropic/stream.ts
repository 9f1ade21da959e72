// An Anthropic Messages stream → OpenAI chat chunks, event by event (cf-contract-2 §2.9):
// message_start opens the assistant turn, text deltas are content, a tool_use block is a tool
// call whose input_json_delta pieces are its `arguments` (or, for a structured-output request,
// the content), message_delta closes with the finish_reason, message_stop is `[DONE]` (after the
// usage chunk when the client asked for it). An `error` event becomes `data: {"error": …}`, which
// the OpenAI SDKs raise. The usage is metered from message_start and message_delta.

import { chatChunks } from "../chat-shapes";
import { chatStreamError, type EventSourceMessage, meteredEvents } from "../sse";
import type { MeteredStream, TokenUsage } from "../types";
import { deltaOutput } from "./output";
import { finishReason } from "./response";
import { type AnthropicUsage, readExtras, readUsage } from "./usage";

interface StreamEvent {
  type?: string;
  index?: number;
  message?: { id?: string; model?: string; usage?: AnthropicUsage };
  content_block?: { type?: string; id?: string; name?: string };
  delta?: { type?: string; text?: string; partial_json?: string; stop_reason?: unknown };
  usage?: AnthropicUsage;
  error?: { type?: string; message?: string };
}

export function translateStream(
  upstream: ReadableStream<Uint8Array>,
  {
    clientWantsUsage,
    jsonAnswer,
    signal,
  }: { clientWantsUsage: boolean; jsonAnswer: boolean; signal?: AbortSignal | undefined },
): MeteredStream {
  let id = "";
  let model = "";
  const chunks = chatChunks(() => ({ id, model }));
  let usage: AnthropicUsage = {};
  let text = "";
  let final = false; // message_delta carries the final output count
  let stopped = false; // message_stop seen
  let tools = 0; // OpenAI tool-call indexes count tool_use blocks only
  const toolIndex = new Map<number, number>(); // Anthropic block index → OpenAI tool-call index

  const chunk = chunks.delta;
  const metered = (): TokenUsage | null => readUsage(usage as AnthropicUsage);

  const event = (message: EventSourceMessage): string => {
    let data: StreamEvent;
    try {
      data = JSON.parse(message.data) as StreamEvent;
    } catch {
      return ""; // not an Anthropic event
    }
    switch (data.type) {
      case "message_start":
        id = data.message?.id ?? "";
        model = data.message?.model ?? "";
        usage = { ...data.message?.usage };
        return chunk({ role: "assistant", content: "" });
      case "content_block_start": {
        const block = data.content_block;
        if (block?.type !== "tool_use" || jsonAnswer) return "";
        const k = tools++;
        toolIndex.set(data.index ?? -1, k);
        return chunk({
          tool_calls: [{ index: k, id: block.id, type: "function", function: { name: block.name, arguments: "" } }],
        });
      }
      case "content_block_delta": {
        text += deltaOutput(data);
        const delta = data.delta;
        if (delta?.type === "text_delta" && typeof delta.text === "string") {
          return chunk({ content: delta.text });
        }
        if (delta?.type === "input_json_delta" && typeof delta.partial_json === "string") {
          if (jsonAnswer) return delta.partial_json ? chunk({ content: delta.partial_json }) : "";
          const k = toolIndex.get(data.index ?? -1);
          return k === undefined
            ? ""
            : chunk({ tool_calls: [{ index: k, function: { arguments: delta.partial_json } }] });
        }
        return ""; // thinking and signature deltas have no OpenAI field
      }
      case "message_delta":
        usage = { ...usage, ...data.usage }; // cumulative: the last value wins
        final = true;
        return chunk({}, finishReason(data.delta?.stop_reason, jsonAnswer));
      case "message_stop": {
        stopped = true;
        const tokens = metered();
        const tail = clientWantsUsage && tokens ? chunks.usage(tokens) : "";
        return `${tail}data: [DONE]\n\n`;
      }
      case "error": {
        stopped = true; // the provider said why in-band: passed on, nothing to add
        const error = {
          message: data.error?.message ?? "The model provider failed mid-stream.",
          type: data.error?.type ?? "api_error",
          code: data.error?.type ?? null,
        };
        return `data: ${JSON.stringify({ error })}\n\n`;
      }
      default:
        return ""; // ping, content_block_stop
    }
  };

  const rewrite = { event, comment: () => "", complete: () => stopped, truncated: () => chatStreamError() };
  return meteredEvents(upstream, rewrite, signal, () => ({
    usage: metered(),
    text,
    complete: final,
    extras: readExtras(usage),
  }));
}
