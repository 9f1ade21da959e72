// A Gemini SSE stream (`?alt=sse`: one GenerateContentResponse per `data:` event) → OpenAI chat
// chunks, event by event: the first opens the assistant turn, text parts are content (thoughts
// are not), each function call a whole tool call (Gemini sends a call in one piece), the event
// with a finishReason closes with the finish_reason, and the end of the stream is `[DONE]` (after
// the usage chunk when the client asked for it). An in-band `{"error": …}` becomes OpenAI's
// in-band error. Every event carries usageMetadata; the one with the finishReason the whole.

import { chatStreamError, type EventSourceMessage, meteredEvents } from "../sse";
import type { MeteredStream } from "../types";
import { googleError } from "./errors";
import { type Candidate, partsOf, partsOutput } from "./output";
import { finishReason, toolCalls, visibleText } from "./response";
import { type GeminiUsage, openaiUsage, readUsage } from "./usage";

interface Event {
  candidates?: Candidate[];
  usageMetadata?: GeminiUsage;
  modelVersion?: string;
  responseId?: string;
  error?: unknown;
}

export function translateStream(
  upstream: ReadableStream<Uint8Array>,
  { clientWantsUsage, signal }: { clientWantsUsage: boolean; signal?: AbortSignal | undefined },
): MeteredStream {
  let id = "";
  let model = "";
  const created = Math.floor(Date.now() / 1000);
  let usage: GeminiUsage | null = null;
  let text = "";
  let opened = false;
  let finished = false; // an event with a finishReason came
  let failed = false; // the provider said why in-band
  let calls = 0;

  const chunk = (delta: Record<string, unknown>, finish: string | null = null): string =>
    `data: ${JSON.stringify({
      id,
      object: "chat.completion.chunk",
      created,
      model,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    })}\n\n`;

  const event = (message: EventSourceMessage): string => {
    let data: Event;
    try {
      data = JSON.parse(message.data) as Event;
    } catch {
      return ""; // not a Gemini event
    }
    const error = googleError(data);
    if (error) {
      failed = true;
      const body = {
        message: error.message ?? "The model provider failed mid-stream.",
        type: "api_error",
        code: error.status ?? null,
      };
      return `data: ${JSON.stringify({ error: body })}\n\n`;
    }
    let out = "";
    if (!opened) {
      opened = true;
      id = `chatcmpl-${data.responseId ?? ""}`;
      model = data.modelVersion ?? "";
      out += chunk({ role: "assistant", content: "" });
    }
    if (data.usageMetadata) usage = data.usageMetadata;
    const parts = partsOf(data);
    text += partsOutput(parts);
    const content = visibleText(parts);
    if (content !== "") out += chunk({ content });
    const made = toolCalls(parts, data.responseId ?? "", calls).map((call, i) => ({ index: calls + i, ...call }));
    if (made.length > 0) {
      calls += made.length;
      out += chunk({ tool_calls: made });
    }
    const reason = data.candidates?.[0]?.finishReason;
    if (reason !== undefined && reason !== null && !finished) {
      finished = true;
      out += chunk({}, finishReason(reason, calls > 0));
    }
    return out;
  };

  const end = (): string => {
    if (failed || !finished) return "";
    const tokens = readUsage(usage);
    const tail =
      clientWantsUsage && tokens
        ? `data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model, choices: [], usage: openaiUsage(tokens, usage) })}\n\n`
        : "";
    return `${tail}data: [DONE]\n\n`;
  };

  const rewrite = {
    event,
    end,
    comment: () => "",
    complete: () => finished || failed,
    truncated: () => chatStreamError(),
  };
  return meteredEvents(upstream, rewrite, signal, () => ({ usage: readUsage(usage), text, complete: finished }));
}
