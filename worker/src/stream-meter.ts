// A metered pass-through of an OpenAI chat stream: events go on to the client one by one as
// they arrive (never the whole body), while the usage and the streamed text are captured.

import { createParser, type EventSourceMessage } from "eventsource-parser";
import type { Tokens } from "./pricing";
import { readUsage } from "./usage";

const encoder = new TextEncoder();
const CONTENT = /"delta":\{[^{}]*?"content":"((?:[^"\\]|\\.)*)"/g; // every choice's delta
const USAGE_NULL = '"usage":null';
const USAGE_NULL_FIELD = /,"usage":null|"usage":null,?/;
// A single event larger than this is not an answer chunk: the parser refuses to buffer it.
const MAX_EVENT_BYTES = 4 * 1024 * 1024;

export interface Metered {
  usage: Required<Tokens> | null;
  text: string;
}

interface Chunk {
  usage?: unknown;
  choices?: { delta?: { content?: unknown } }[];
}

function serialize({ event, id, data }: EventSourceMessage): string {
  let out = event ? `event: ${event}\n` : "";
  if (id !== undefined) out += `id: ${id}\n`;
  for (const line of data.split("\n")) out += `data: ${line}\n`;
  return `${out}\n`;
}

/**
 * Pass an OpenAI SSE stream through event by event while capturing usage and the streamed
 * text. When the client did not ask for usage, the extra usage chunk (and the `usage: null`
 * field of every chunk) is removed again, so the client sees what OpenAI would send it.
 * `done` resolves when the stream ends, breaks, or the client goes away (`signal`, the
 * request's: aborting it also stops reading upstream, so a gone client costs no more tokens).
 */
export function meterStream(
  upstream: ReadableStream<Uint8Array>,
  { clientWantsUsage, signal }: { clientWantsUsage: boolean; signal?: AbortSignal | undefined },
): { stream: ReadableStream<Uint8Array>; done: Promise<Metered> } {
  let usage: Required<Tokens> | null = null;
  let text = "";
  let resolveDone: (value: Metered) => void = () => {};
  const done = new Promise<Metered>((resolve) => {
    resolveDone = resolve;
  });
  const finish = () => resolveDone({ usage, text });
  let out = "";

  // Most events are plain content chunks: read them with string operations and only parse
  // JSON for the rare usage chunk (parsing every chunk halved streaming throughput).
  const rewrite = (message: EventSourceMessage): string => {
    const { data } = message;
    if (data === "[DONE]") return serialize(message);
    if (data.includes('"usage":{')) {
      let chunk: Chunk;
      try {
        chunk = JSON.parse(data) as Chunk;
      } catch {
        return serialize(message);
      }
      usage = readUsage(chunk.usage) ?? usage;
      for (const choice of chunk.choices ?? []) {
        if (typeof choice?.delta?.content === "string") text += choice.delta.content;
      }
      if (clientWantsUsage) return serialize(message);
      if ((chunk.choices ?? []).length === 0) return ""; // the extra usage chunk
      delete chunk.usage;
      return serialize({ ...message, data: JSON.stringify(chunk) });
    }
    for (const [, content = ""] of data.matchAll(CONTENT)) {
      text += content.includes("\\") ? (JSON.parse(`"${content}"`) as string) : content;
    }
    if (clientWantsUsage || !data.includes(USAGE_NULL)) return serialize(message);
    return serialize({ ...message, data: data.replace(USAGE_NULL_FIELD, "") });
  };

  let broken: string | null = null;
  const parser = createParser({
    maxBufferSize: MAX_EVENT_BYTES,
    onEvent(message) {
      out += rewrite(message);
    },
    onComment(comment) {
      out += `: ${comment}\n\n`; // keep-alives reach the client too
    },
    onRetry(retry) {
      out += `retry: ${retry}\n\n`;
    },
    onError(error) {
      if (error.type === "max-buffer-size-exceeded") broken = error.message;
    },
  });
  const decoder = new TextDecoder();
  signal?.addEventListener("abort", finish, { once: true });
  const metered = new TransformStream<Uint8Array, Uint8Array>({
    transform(value, controller) {
      if (broken === null) parser.feed(decoder.decode(value, { stream: true }));
      if (out) controller.enqueue(encoder.encode(out));
      out = "";
      if (broken !== null) {
        console.error(JSON.stringify({ event: "upstream_stream_refused", reason: broken }));
        controller.error(new Error(`upstream stream refused: ${broken}`));
        finish();
      }
    },
    flush(controller) {
      if (broken !== null) return;
      // An unterminated last line and event still count: end them as a blank line would.
      parser.feed(`${decoder.decode()}\n\n`);
      if (out) controller.enqueue(encoder.encode(out));
      finish();
    },
    cancel() {
      finish();
    },
  });
  const stream = upstream.pipeThrough(metered, signal ? { signal } : {});
  return { stream, done };
}
