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

// what ends every chunk of a stream that was asked for usage, but its last (compact JSON)
const USAGE_NULL_LAST = ',"usage":null}';
const USAGE_KEY = '"usage"';

/** The tier of the first unparsed chunk (its JSON read), if any. */
function firstTier(outputs: readonly { raw?: string }[]): string | null {
  const first = outputs.find((o) => o.raw !== undefined);
  return first?.raw === undefined ? null : chatTier(JSON.parse(first.raw) as unknown);
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
  // the chunks' output, in order: each parsed chunk's text, or an unparsed chunk's JSON, read
  // only if the text is needed (no usage came, or the stream was cut)
  const outputs: { text?: string; raw?: string }[] = [];
  let ended = false; // [DONE] seen

  // A chunk as OpenAI writes it when usage was asked for (compact JSON, `"usage":null` last)
  // goes on without being parsed: for a client that did not ask, only that field is cut off.
  // Any other chunk is parsed (its output counts if no usage comes, whatever its JSON's
  // spacing); one that carries a usage field is written again without it, and the extra
  // usage chunk is dropped, for a client that did not ask.
  const event = (message: EventSourceMessage): string => {
    const { data } = message;
    if (data === "[DONE]") {
      ended = true;
      return serializeEvent(message);
    }
    if (data.endsWith(USAGE_NULL_LAST) && data.indexOf(USAGE_KEY) === data.length - USAGE_NULL_LAST.length + 1) {
      outputs.push({ raw: data });
      if (clientWantsUsage) return serializeEvent(message);
      return serializeEvent({ ...message, data: `${data.slice(0, -USAGE_NULL_LAST.length)}}` });
    }
    let chunk: Chunk;
    try {
      chunk = JSON.parse(data) as Chunk;
    } catch {
      return serializeEvent(message);
    }
    outputs.push({ text: chatChunkOutput(chunk) });
    tier = chatTier(chunk) ?? tier;
    if (chunk.usage !== undefined) usage = readUsage(chunk.usage) ?? usage;
    if (clientWantsUsage || chunk.usage === undefined) return serializeEvent(message);
    if (Array.isArray(chunk.choices) && chunk.choices.length === 0) return ""; // the extra usage chunk
    delete chunk.usage;
    return serializeEvent({ ...message, data: JSON.stringify(chunk) });
  };

  /** The unparsed chunks read: their text, and the tier when no parsed chunk said it. */
  const text = (): string => {
    let out = "";
    for (const output of outputs) {
      if (output.raw !== undefined) {
        const chunk = JSON.parse(output.raw) as unknown;
        output.text = chatChunkOutput(chunk);
        tier ??= chatTier(chunk);
        delete output.raw;
      }
      out += output.text ?? "";
    }
    return out;
  };
  const rewrite = { event, complete: () => ended, truncated: () => chatStreamError() };
  const result = () => {
    if (usage === null)
      text(); // no usage chunk: the tier is only in the others
    else if (tier === null) tier = firstTier(outputs); // a usage chunk without the tier the others had
    return {
      usage,
      get text() {
        return text();
      },
      complete: usage !== null,
      extras: { tools: {}, tier },
    };
  };
  // asked for usage, the client gets the stream as OpenAI sent it: bytes piped natively
  return (clientWantsUsage ? watchedEvents : meteredEvents)(upstream, rewrite, signal, result);
}
