// A provider's stream, framed however it is (server-sent events, AWS's binary event stream),
// rewritten for the client as it arrives: each upstream chunk goes through the framing, and
// what the framing hands back goes on at once. The client going away (the request's signal)
// stops reading upstream, so a gone client costs no more tokens. Shared by every stream the
// Worker rewrites (sse.ts frames server-sent events with it).

import type { Metered, MeteredStream } from "./types";

const encoder = new TextEncoder();

/** How a stream's bytes become the client's text. */
export interface Framing {
  /** Upstream bytes → what the client gets now ("" for nothing yet). */
  feed(bytes: Uint8Array): string;
  /** Upstream ended (normally, or a read failed): what the client gets last; called once. */
  end(): string;
  /** Why the bytes cannot be this stream (then the client gets `refused()` and upstream stops); null while they can. */
  broken(): string | null;
  refused(): string;
}

/**
 * `upstream` rewritten through `framing`. `finished` runs once, when the stream ends, breaks, or
 * the client goes away. One stream that reads upstream itself: each chunk costs one read and
 * one enqueue (a reader wrapper plus a TransformStream cost two hops).
 */
export function rewriteStream(
  upstream: ReadableStream<Uint8Array>,
  framing: Framing,
  { signal, finished, firstChunk }: { signal?: AbortSignal | undefined; finished: () => void; firstChunk?: () => void },
): ReadableStream<Uint8Array> {
  let started = false;
  let done = false;
  const finish = () => {
    if (!done) {
      done = true;
      finished();
    }
  };
  const reader = upstream.getReader();
  const stop = () => {
    finish();
    reader.cancel().catch(() => {});
  };
  signal?.addEventListener("abort", stop, { once: true });
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
          const last = framing.end();
          if (last) controller.enqueue(encoder.encode(last));
          controller.close();
          finish();
          return;
        }
        const out = framing.feed(chunk.value);
        const broken = framing.broken();
        if (broken !== null) {
          // not this provider's stream: the client is told in-band, as for a cut (an errored
          // stream would end its response as if complete)
          console.error(JSON.stringify({ event: "upstream_stream_refused", reason: broken }));
          controller.enqueue(encoder.encode(out + framing.refused()));
          controller.close();
          stop();
          return;
        }
        if (out) {
          controller.enqueue(encoder.encode(out));
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

/** A meter's `done`, resolved with `result()` by the first `finish()` (later ones do nothing). */
export function meterOutcome(result: () => Metered): { done: Promise<Metered>; finish: () => void } {
  let resolveDone: (value: Metered) => void = () => {};
  const done = new Promise<Metered>((resolve) => {
    resolveDone = resolve;
  });
  let finished = false;
  const finish = () => {
    if (!finished) {
      finished = true;
      resolveDone(result());
    }
  };
  return { done, finish };
}

/** When (Date.now()) a stream's first bytes went to the client: `mark` it then, read it with `at`. */
export function firstChunkClock(): { mark: () => void; at: () => number | null } {
  let at: number | null = null;
  return {
    mark: () => {
      at ??= Date.now();
    },
    at: () => at,
  };
}

/**
 * `upstream` rewritten through `framing` while a meter watches it: `done` resolves with the
 * meter's `result()` once, when the stream ends, breaks, or the client goes away.
 */
export function meteredFrames(
  upstream: ReadableStream<Uint8Array>,
  framing: Framing,
  signal: AbortSignal | undefined,
  result: () => Metered,
): MeteredStream {
  const { done, finish } = meterOutcome(result);
  const first = firstChunkClock();
  const stream = rewriteStream(upstream, framing, { signal, finished: finish, firstChunk: first.mark });
  return { stream, done, firstChunkAt: first.at };
}
