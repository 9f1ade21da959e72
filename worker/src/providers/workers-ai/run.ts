// Workers AI's own run API for its clients (`/workers-ai/@cf/<model>`), through the binding:
// the answer in Cloudflare's v4 envelope as the REST API gives it ({result, success, errors,
// messages}; the binding hands back the bare result), streams passed through event by event.
// Embeddings for the OpenAI-shaped route: {shape, data} → OpenAI's list.

import { chatStreamError, type EventSourceMessage, watchedEvents } from "../sse";
import type { Answer, MeteredStream, TokenUsage } from "../types";
import { outputOf, type WorkersAIOutput } from "./response";
import { readUsage } from "./usage";

export function runAnswer(raw: string): Answer {
  let result: unknown;
  let said: string;
  try {
    result = JSON.parse(raw);
    said = outputOf(result as WorkersAIOutput);
  } catch {
    result = raw; // not JSON: still enveloped, as text
    said = raw;
  }
  const usage = readUsage((result as { usage?: unknown } | null)?.usage);
  const text = JSON.stringify({ result, success: true, errors: [], messages: [] });
  return { text, said, usage, contentType: "application/json" };
}

export function meterRunStream(upstream: ReadableStream<Uint8Array>, signal?: AbortSignal): MeteredStream {
  let usage: TokenUsage | null = null;
  let text = "";
  let ended = false; // [DONE] seen
  const event = (message: EventSourceMessage): void => {
    const { data } = message;
    if (data === "[DONE]") {
      ended = true;
      return;
    }
    let output: WorkersAIOutput;
    try {
      output = JSON.parse(data) as WorkersAIOutput;
    } catch {
      return; // malformed: metered from what came before
    }
    text += outputOf(output);
    usage = readUsage(output?.usage) ?? usage;
  };
  const watch = { event, complete: () => ended, truncated: () => chatStreamError() };
  return watchedEvents(upstream, watch, signal, () => ({ usage, text, complete: usage !== null }));
}

/** Workers AI's embeddings ({shape, data}) → OpenAI's list, float or base64 (little-endian float32). */
export function openaiEmbeddings(
  raw: string,
  { model, promptTokens, base64 }: { model: string; promptTokens: number; base64: boolean },
): string {
  const data = (JSON.parse(raw) as { data?: number[][] }).data ?? [];
  const encode = (vector: number[]): number[] | string => {
    if (!base64) return vector;
    const bytes = new Uint8Array(new Float32Array(vector).buffer);
    return btoa(String.fromCharCode(...bytes));
  };
  return JSON.stringify({
    object: "list",
    data: data.map((vector, index) => ({ object: "embedding", index, embedding: encode(vector) })),
    model,
    usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
  });
}
