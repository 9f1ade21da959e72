// A metered pass-through of an OpenAI chat stream: events go on to the client one by one as
// they arrive, while the usage and the streamed text are captured.

import { chatStreamError, type EventSourceMessage, meteredEvents, serializeEvent, watchedEvents } from "../sse";
import type { MeteredStream, TokenUsage } from "../types";
import { chatChunkOutput, chatTier } from "./output";
import { readUsage } from "./usage";

interface Chunk {
  usage?: unknown;
  choices?: unknown[];
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
  let tier: string | null = null;
  let text = "";
  let ended = false; // [DONE] seen

  // Each chunk is parsed (its output counts if no usage comes, whatever its JSON's spacing);
  // for a client that did not ask for usage, a chunk that carries a usage field is written
  // again without it, and the extra usage chunk is dropped.
  const event = (message: EventSourceMessage): string => {
    const { data } = message;
    if (data === "[DONE]") {
      ended = true;
      return serializeEvent(message);
    }
    let chunk: Chunk;
    try {
      chunk = JSON.parse(data) as Chunk;
    } catch {
      return serializeEvent(message);
    }
    text += chatChunkOutput(chunk);
    tier = chatTier(chunk) ?? tier;
    if (chunk.usage !== undefined) usage = readUsage(chunk.usage) ?? usage;
    if (clientWantsUsage || chunk.usage === undefined) return serializeEvent(message);
    if (Array.isArray(chunk.choices) && chunk.choices.length === 0) return ""; // the extra usage chunk
    delete chunk.usage;
    return serializeEvent({ ...message, data: JSON.stringify(chunk) });
  };

  const rewrite = { event, complete: () => ended, truncated: () => chatStreamError() };
  const result = () => ({ usage, text, complete: usage !== null, extras: { tools: {}, tier } });
  // asked for usage, the client gets the stream as OpenAI sent it: bytes piped natively
  return (clientWantsUsage ? watchedEvents : meteredEvents)(upstream, rewrite, signal, result);
}
