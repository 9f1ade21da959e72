// A metered pass-through of an OpenAI chat stream: events go on to the client one by one as
// they arrive, while the usage and the streamed text are captured.

import {
  chatStreamError,
  type EventSourceMessage,
  jsonString,
  meteredEvents,
  serializeEvent,
  watchedEvents,
} from "../sse";
import type { MeteredStream, TokenUsage } from "../types";
import { readUsage } from "./usage";

const CONTENT = /"delta":\{[^{}]*?"content":"((?:[^"\\]|\\.)*)"/g; // every choice's delta
const USAGE_NULL = '"usage":null';
const USAGE_NULL_FIELD = /,"usage":null|"usage":null,?/;

interface Chunk {
  usage?: unknown;
  choices?: { delta?: { content?: unknown } }[];
}

/**
 * Pass an OpenAI SSE stream through event by event while capturing usage and the streamed
 * text. When the client did not ask for usage, the extra usage chunk (and the `usage: null`
 * field of every chunk) is removed again, so the client sees what OpenAI would send it.
 */
export function meterChatStream(
  upstream: ReadableStream<Uint8Array>,
  { clientWantsUsage, signal }: { clientWantsUsage: boolean; signal?: AbortSignal | undefined },
): MeteredStream {
  let usage: TokenUsage | null = null;
  let text = "";
  let ended = false; // [DONE] seen

  // Most events are plain content chunks: read them with string operations and only parse
  // JSON for the rare usage chunk (parsing every chunk halved streaming throughput).
  const event = (message: EventSourceMessage): string => {
    const { data } = message;
    if (data === "[DONE]") {
      ended = true;
      return serializeEvent(message);
    }
    if (data.includes('"usage":{')) {
      let chunk: Chunk;
      try {
        chunk = JSON.parse(data) as Chunk;
      } catch {
        return serializeEvent(message);
      }
      usage = readUsage(chunk.usage) ?? usage;
      for (const choice of chunk.choices ?? []) {
        if (typeof choice?.delta?.content === "string") text += choice.delta.content;
      }
      if (clientWantsUsage) return serializeEvent(message);
      if ((chunk.choices ?? []).length === 0) return ""; // the extra usage chunk
      delete chunk.usage;
      return serializeEvent({ ...message, data: JSON.stringify(chunk) });
    }
    for (const [, content = ""] of data.matchAll(CONTENT)) {
      text += jsonString(content);
    }
    if (clientWantsUsage || !data.includes(USAGE_NULL)) return serializeEvent(message);
    return serializeEvent({ ...message, data: data.replace(USAGE_NULL_FIELD, "") });
  };

  const rewrite = { event, complete: () => ended, truncated: () => chatStreamError() };
  const result = () => ({ usage, text, complete: usage !== null });
  // asked for usage, the client gets the stream as OpenAI sent it: bytes piped natively
  return (clientWantsUsage ? watchedEvents : meteredEvents)(upstream, rewrite, signal, result);
}
