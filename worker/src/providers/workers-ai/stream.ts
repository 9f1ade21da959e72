// A Workers AI stream (`data: {"response": "<piece>"}` …, usage on a late event, `data: [DONE]`)
// → OpenAI chat chunks: the first opens the assistant turn, each piece is content, tool calls
// arrive whole in one event, [DONE] closes with the finish_reason (and the usage chunk when the
// client asked for it). An event with OpenAI's `choices` passes through as it came.

import { chatStreamError, type EventSourceMessage, meteredEvents } from "../sse";
import type { MeteredStream, TokenUsage } from "../types";
import { contentOf, openaiToolCall, type WorkersAIOutput } from "./response";
import { openaiUsage, readUsage } from "./usage";

export function translateStream(
  upstream: ReadableStream<Uint8Array>,
  {
    clientWantsUsage,
    requestId,
    model,
    signal,
  }: { clientWantsUsage: boolean; requestId: string; model: string; signal?: AbortSignal | undefined },
): MeteredStream {
  const id = `chatcmpl-${requestId}`;
  const created = Math.floor(Date.now() / 1000);
  let usage: TokenUsage | null = null;
  let text = "";
  let opened = false;
  let tools = 0;
  let closed = false;

  const chunk = (delta: Record<string, unknown>, finish: string | null = null, extra = {}): string =>
    `data: ${JSON.stringify({
      id,
      object: "chat.completion.chunk",
      created,
      model,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
      ...extra,
    })}\n\n`;
  const open = (): string => {
    if (opened) return "";
    opened = true;
    return chunk({ role: "assistant", content: "" });
  };
  const close = (): string => {
    if (closed) return "";
    closed = true;
    const tail =
      clientWantsUsage && usage
        ? `data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model, choices: [], usage: openaiUsage(usage) })}\n\n`
        : "";
    return `${open()}${chunk({}, tools > 0 ? "tool_calls" : "stop")}${tail}data: [DONE]\n\n`;
  };

  const event = (message: EventSourceMessage): string => {
    if (message.data === "[DONE]") return close();
    let data: WorkersAIOutput;
    try {
      data = JSON.parse(message.data) as WorkersAIOutput;
    } catch {
      return ""; // not a Workers AI event
    }
    usage = readUsage(data?.usage) ?? usage;
    if (Array.isArray(data?.choices)) return `data: ${message.data}\n\n`;
    let out = "";
    const piece = contentOf(data?.response);
    if (piece) {
      text += piece;
      out += open() + chunk({ content: piece });
    }
    for (const call of Array.isArray(data?.tool_calls) ? data.tool_calls : []) {
      const k = tools++;
      const openai = openaiToolCall(call, k, requestId);
      text += openai.function.arguments;
      out += open() + chunk({ tool_calls: [{ index: k, ...openai }] });
    }
    return out;
  };

  // A stream that ends without [DONE] broke off: the client gets an in-band error, no finish.
  const rewrite = { event, comment: () => "", complete: () => closed, truncated: () => chatStreamError() };
  return meteredEvents(upstream, rewrite, signal, () => ({
    usage,
    text,
    complete: usage !== null,
  }));
}
