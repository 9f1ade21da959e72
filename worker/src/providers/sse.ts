// Server-sent events between the provider and the client: parse upstream events as they arrive
// (eventsource-parser: CR/LF/CRLF, comments, fields, a bounded buffer), hand each to the
// provider's rewrite, and send what it returns on at once. Shared by every provider's stream.

import { createParser, type EventSourceMessage } from "eventsource-parser";
import type { Metered, MeteredStream } from "./types";

const encoder = new TextEncoder();
// A single event larger than this is not an answer chunk: the parser refuses to buffer it.
const MAX_EVENT_CHARS = 4 * 1024 * 1024;

export type { EventSourceMessage };

/** One event in SSE framing. */
export function serializeEvent({ event, id, data }: EventSourceMessage): string {
  let out = event ? `event: ${event}\n` : "";
  if (id !== undefined) out += `id: ${id}\n`;
  for (const line of data.split("\n")) out += `data: ${line}\n`;
  return `${out}\n`;
}

export interface EventRewrite {
  /** What the client gets for this upstream event ("" for nothing). */
  event(message: EventSourceMessage): string;
  /** What the client gets after the last event (e.g. a closing chunk); called once. */
  end?(): string;
  /** Comments (keep-alives) are passed on unless this says otherwise. */
  comment?(comment: string): string;
  /**
   * Whether the provider's terminal event came. A stream that ends (or breaks) without it was
   * cut: the client then gets `truncated()`, an in-band error its SDK raises, never a silent end.
   */
  complete?(): boolean;
  truncated?(): string;
}

const CUT = "The model's stream ended before it was complete.";

/** OpenAI chat's in-band stream error (the SDKs raise APIError on it). */
export function chatStreamError(message = CUT): string {
  return `data: ${JSON.stringify({ error: { message, type: "api_error", param: null, code: "upstream_incomplete" } })}\n\n`;
}

/**
 * `upstream` rewritten event by event. `finished` runs once, when the stream ends, breaks, or
 * the client goes away (`signal`, the request's: aborting it also stops reading upstream, so a
 * gone client costs no more tokens). One stream that reads upstream itself: each chunk costs
 * one read and one enqueue (a reader wrapper plus a TransformStream cost two hops).
 */
export function rewriteEvents(
  upstream: ReadableStream<Uint8Array>,
  rewrite: EventRewrite,
  { signal, finished, firstChunk }: { signal?: AbortSignal | undefined; finished: () => void; firstChunk?: () => void },
): ReadableStream<Uint8Array> {
  let started = false;
  let out = "";
  let broken: string | null = null;
  let done = false;
  const finish = () => {
    if (!done) {
      done = true;
      finished();
    }
  };
  const parser = createParser({
    maxBufferSize: MAX_EVENT_CHARS,
    onEvent(message) {
      out += rewrite.event(message);
    },
    onComment(comment) {
      out += rewrite.comment ? rewrite.comment(comment) : `: ${comment}\n\n`;
    },
    onRetry(retry) {
      out += `retry: ${retry}\n\n`;
    },
    onError(error) {
      if (error.type === "max-buffer-size-exceeded") broken = error.message;
    },
  });
  const decoder = new TextDecoder();
  const reader = upstream.getReader();
  const stop = () => {
    finish();
    reader.cancel().catch(() => {});
  };
  signal?.addEventListener("abort", stop, { once: true });
  /** The stream's end, normal or broken (a read error): the rewrite's end, or the cut's error. */
  const ending = (): string => {
    // An unterminated last line and event still count: end them as a blank line would.
    parser.feed(`${decoder.decode()}\n\n`);
    out += rewrite.end?.() ?? "";
    if (rewrite.complete && !rewrite.complete() && !signal?.aborted) {
      console.error(JSON.stringify({ event: "upstream_stream_cut" }));
      out += rewrite.truncated?.() ?? chatStreamError();
    }
    return out;
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      for (;;) {
        let chunk: ReadableStreamReadResult<Uint8Array>;
        try {
          chunk = await reader.read();
        } catch {
          chunk = { done: true, value: undefined }; // broken upstream: ends as a cut stream
        }
        if (chunk.done) {
          const last = ending();
          if (last) controller.enqueue(encoder.encode(last));
          controller.close();
          finish();
          return;
        }
        parser.feed(decoder.decode(chunk.value, { stream: true }));
        if (broken !== null) {
          console.error(JSON.stringify({ event: "upstream_stream_refused", reason: broken }));
          controller.error(new Error(`upstream stream refused: ${broken}`));
          stop();
          return;
        }
        if (out) {
          controller.enqueue(encoder.encode(out));
          out = "";
          if (!started) {
            started = true;
            firstChunk?.();
          }
          return;
        }
      }
    },
    cancel(reason) {
      finish();
      return reader.cancel(reason);
    },
  });
}

/**
 * `upstream` rewritten event by event while a meter watches it: `done` resolves with the
 * meter's `result()` once, when the stream ends, breaks, or the client goes away.
 */
export function meteredEvents(
  upstream: ReadableStream<Uint8Array>,
  rewrite: EventRewrite,
  signal: AbortSignal | undefined,
  result: () => Metered,
): MeteredStream {
  let resolveDone: (value: Metered) => void = () => {};
  const done = new Promise<Metered>((resolve) => {
    resolveDone = resolve;
  });
  let firstChunkAt: number | null = null;
  const stream = rewriteEvents(upstream, rewrite, {
    signal,
    finished: () => resolveDone(result()),
    firstChunk: () => {
      firstChunkAt = Date.now();
    },
  });
  return { stream, done, firstChunkAt: () => firstChunkAt };
}

/** A JSON string literal's content (as a regex captured it, quotes excluded), unescaped. */
export function jsonString(captured: string): string {
  return captured.includes("\\") ? (JSON.parse(`"${captured}"`) as string) : captured;
}
