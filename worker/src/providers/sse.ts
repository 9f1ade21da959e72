// Server-sent events between the provider and the client (eventsource-parser: CR/LF/CRLF,
// comments, fields). A rewritten stream's events are parsed as they arrive (a bounded buffer),
// each handed to the provider's rewrite and what it returns sent on at once; a stream the
// client gets as sent is piped natively and its events read at its end (watchedEvents).
// Shared by every provider's stream.

import { createParser, type EventSourceMessage } from "eventsource-parser";
import { type Framing, firstChunkClock, meteredFrames, meterOutcome, rewriteStream } from "./frames";
import type { Metered, MeteredStream } from "./types";

const encoder = new TextEncoder();
// A single event larger than this is not an answer chunk: a rewriting parser refuses to buffer it.
const MAX_EVENT_CHARS = 4 * 1024 * 1024;

export type { EventSourceMessage };

/** The output of events kept as their JSON text, read only now (a malformed one adds nothing):
 * a metered stream's text is needed only when no usage came or the stream was cut. */
export function outputOf(events: readonly string[], output: (event: unknown) => string): string {
  let out = "";
  for (const data of events) {
    try {
      out += output(JSON.parse(data));
    } catch {
      // malformed: no output counted for it
    }
  }
  return out;
}

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

/** What a pass-through meter sees (watchedEvents): each event and comment, read, never rewritten. */
export interface EventWatch {
  event(message: EventSourceMessage): void;
  /** Whether events must still be read as they come (an id the client may use mid-stream);
   * once false, the rest are read at the end (watchedEvents). */
  live?(): boolean;
  comment?(comment: string): void;
  complete?(): boolean;
  truncated?(): string;
}

const CUT = "The model's stream ended before it was complete.";

/** OpenAI chat's in-band stream error (the SDKs raise APIError on it). */
export function chatStreamError(message = CUT): string {
  return `data: ${JSON.stringify({ error: { message, type: "api_error", param: null, code: "upstream_incomplete" } })}\n\n`;
}

/** Server-sent events as a framing (frames.ts): parsed as they arrive, each handed to `rewrite`. */
function sseFraming(rewrite: EventRewrite, signal: AbortSignal | undefined): Framing {
  let out = "";
  let broken: string | null = null;
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
  const take = (): string => {
    const taken = out;
    out = "";
    return taken;
  };
  return {
    feed(bytes) {
      parser.feed(decoder.decode(bytes, { stream: true }));
      return take();
    },
    /** The stream's end, normal or broken (a read error): the rewrite's end, or the cut's error. */
    end() {
      // An unterminated last line and event still count: end them as a blank line would.
      parser.feed(`${decoder.decode()}\n\n`);
      out += rewrite.end?.() ?? "";
      if (rewrite.complete && !rewrite.complete() && !signal?.aborted) {
        console.error(JSON.stringify({ event: "upstream_stream_cut" }));
        out += rewrite.truncated?.() ?? chatStreamError();
      }
      return take();
    },
    broken: () => broken,
    refused: () => rewrite.truncated?.() ?? chatStreamError(),
  };
}

/**
 * `upstream` rewritten event by event. `finished` runs once, when the stream ends, breaks, or
 * the client goes away (`signal`, the request's: aborting it also stops reading upstream).
 */
export function rewriteEvents(
  upstream: ReadableStream<Uint8Array>,
  rewrite: EventRewrite,
  options: { signal?: AbortSignal | undefined; finished: () => void; firstChunk?: () => void },
): ReadableStream<Uint8Array> {
  return rewriteStream(upstream, sseFraming(rewrite, options.signal), options);
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
  return meteredFrames(upstream, sseFraming(rewrite, signal), signal, result);
}

/** workerd's native identity stream (bytes move without JavaScript); a TransformStream elsewhere. */
function identityStream(): TransformStream<Uint8Array, Uint8Array> {
  const Native = (globalThis as { IdentityTransformStream?: new () => TransformStream<Uint8Array, Uint8Array> })
    .IdentityTransformStream;
  return Native ? new Native() : new TransformStream<Uint8Array, Uint8Array>();
}

const READ_BUFFER_BYTES = 64 * 1024;
// A piped stream is decoded and parsed in slices this size: no second copy of the whole stream
// is made as one string.
const FEED_BYTES = 64 * 1024;
// A piped stream is read chunk by chunk at most this far while its watch is live(); then, live
// or not, the rest is collected (an upstream that never sends what the watch waits for).
const LIVE_MAX_BYTES = 1024 * 1024;

/**
 * A reader that takes whatever has arrived, never waiting for more. In workerd a tee pulls its
 * source for the most demanding read pending on either branch: a meter waiting for 64 KB
 * (`readAtLeast(65536)`) held the client's branch until 64 KB or the end had come, so a chat
 * answer reached its reader all at once (issue 20). Where the runtime has BYOB readers
 * (workerd) one buffer per stream is reused, each read handing it back; elsewhere (node's
 * tests) a plain reader.
 */
function arrivalReader(stream: ReadableStream<Uint8Array>): {
  read(): Promise<ReadableStreamReadResult<Uint8Array>>;
  cancel(): Promise<void>;
  releaseLock(): void;
} {
  let byob: ReadableStreamBYOBReader | null = null;
  try {
    byob = stream.getReader({ mode: "byob" });
  } catch {
    // not a byte stream
  }
  if (byob) {
    const reader = byob;
    // one buffer per stream: each read hands it back (the caller decodes before reading again)
    let buffer = new Uint8Array(READ_BUFFER_BYTES);
    return {
      read: async () => {
        const chunk = await reader.read(buffer);
        if (chunk.value) buffer = new Uint8Array(chunk.value.buffer);
        return chunk;
      },
      cancel: () => reader.cancel(),
      releaseLock: () => reader.releaseLock(),
    };
  }
  const reader = stream.getReader();
  return { read: () => reader.read(), cancel: () => reader.cancel(), releaseLock: () => reader.releaseLock() };
}

/**
 * Everything `stream` sends from now on, collected without JavaScript per chunk (piped into a
 * native identity stream read whole). Resolves when it ends, breaks or `signal` aborts, with
 * what came until then: a broken upstream still leaves its part to meter. `settled` is called
 * as soon as the stream has ended or broken (not when `signal` stopped it).
 */
async function collected(
  stream: ReadableStream<Uint8Array>,
  signal: AbortSignal,
  settled: () => void,
): Promise<ArrayBuffer> {
  const sink = identityStream();
  const bytes = new Response(sink.readable).arrayBuffer();
  await stream.pipeTo(sink.writable, { preventClose: true, preventAbort: true, signal }).catch(() => {});
  if (!signal.aborted) settled();
  await sink.writable.close().catch(() => {});
  return bytes;
}

// a blank line: what came ended with a whole event
const ENDS_EVENT = /(?:\n\n|\r\r|\r\n\r\n)$/;

// How long a failed pipe to the client waits for the upstream's own end before it counts as a
// client that left (an upstream that broke fails both tee branches in the same turn).
const CLIENT_GONE_GRACE_MS = 200;

/**
 * For a stream the client gets exactly as the provider sent it (`watch` only reads its events):
 * the bytes go to the client from one branch of the upstream's tee, piped natively, with no
 * JavaScript per chunk. The meter reads the other branch's first chunk as it arrives (its time
 * is the first token's), and more while the watch is `live()`; the rest of that branch is
 * collected natively and its events read once, at the end: a chunk costs 30 µs of CPU or more
 * when JavaScript reads it, and a long answer is hundreds of chunks. The stream is held whole
 * meanwhile, so no event is too large to read (a rewritten stream refuses one over 4 MiB). The
 * client's side stays open until the meter has read the end, so a stream cut before its
 * terminal event still ends with the route's in-band error (`truncated`), as meteredEvents ends
 * it. `done` resolves once, when the stream ends, breaks, or the client goes away (with the
 * events that came until then). A client that leaves stops the upstream (both branches
 * cancelled): through `signal` where the runtime aborts it, and in any case soon after the pipe
 * to the client has failed while upstream had not ended (seen locally: workerd failed the pipe
 * but left the request's signal alone).
 */
export function watchedEvents(
  upstream: ReadableStream<Uint8Array>,
  watch: EventWatch,
  signal: AbortSignal | undefined,
  result: () => Metered,
): MeteredStream {
  const { done, finish } = meterOutcome(result);
  const first = firstChunkClock();
  const parser = createParser({
    onEvent(message) {
      watch.event(message);
    },
    onComment(comment) {
      watch.comment?.(comment);
    },
  });
  const decoder = new TextDecoder();
  let tail = "\n\n"; // the last bytes that came: an error event after a cut event starts apart
  const feed = (bytes: Uint8Array): void => {
    tail = (tail + String.fromCharCode(...bytes.subarray(-4))).slice(-4);
    for (let at = 0; at < bytes.byteLength; at += FEED_BYTES) {
      parser.feed(decoder.decode(bytes.subarray(at, at + FEED_BYTES), { stream: true }));
    }
  };
  const [toClient, watched] = upstream.tee();
  const client = identityStream();
  const reader = arrivalReader(watched);
  let reading = true; // the meter still reads chunk by chunk (then `reader` holds the branch)
  const stopPipes = new AbortController();
  let stopped = false;
  let upstreamEnded = false;
  let grace: ReturnType<typeof setTimeout> | undefined;
  const ended = () => {
    upstreamEnded = true;
    if (grace !== undefined) clearTimeout(grace);
  };
  const stop = () => {
    if (stopped || upstreamEnded) return;
    stopped = true;
    if (grace !== undefined) clearTimeout(grace);
    stopPipes.abort();
    if (reading) reader.cancel().catch(() => {});
  };
  signal?.addEventListener("abort", stop, { once: true });
  // the client's side is closed (or errored) by the meter, after the end: never by the pipe
  const pipedOk = toClient
    .pipeTo(client.writable, { preventClose: true, preventAbort: true, signal: stopPipes.signal })
    .then(
      () => true,
      () => {
        // the client left, or upstream broke (then the meter's branch ends in the same turn)
        if (!stopped && !upstreamEnded) grace = setTimeout(stop, CLIENT_GONE_GRACE_MS);
        return false;
      },
    );
  const meter = async (): Promise<void> => {
    let live = 0; // bytes read chunk by chunk
    for (;;) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch {
        chunk = { done: true, value: undefined }; // broken upstream: ends as a cut stream
      }
      if (stopped) return;
      if (chunk.done) {
        ended();
        break;
      }
      if (chunk.value.byteLength > 0) {
        first.mark();
        live += chunk.value.byteLength;
        feed(chunk.value);
      }
      if (first.at() !== null && (!watch.live?.() || live >= LIVE_MAX_BYTES)) {
        reading = false;
        reader.releaseLock();
        let rest: ArrayBuffer;
        try {
          rest = await collected(watched, stopPipes.signal, ended);
        } catch {
          rest = new ArrayBuffer(0); // what came after the switch is lost: metered as a cut stream
          ended();
        }
        feed(new Uint8Array(rest));
        if (stopped) return; // the client left: metered with what came, nothing more to send
        break;
      }
    }
    // An unterminated last line and event still count: end them as a blank line would.
    parser.feed(`${decoder.decode()}\n\n`);
    await pipedOk; // everything upstream sent (and was piped) is with the client
    const writer = client.writable.getWriter();
    try {
      if (watch.complete && !watch.complete()) {
        console.error(JSON.stringify({ event: "upstream_stream_cut" }));
        const after = ENDS_EVENT.test(tail) ? "" : "\n\n";
        await writer.write(encoder.encode(after + (watch.truncated?.() ?? chatStreamError())));
      }
      await writer.close();
    } catch {
      // the client went away meanwhile
    }
  };
  meter()
    .catch(() => {})
    .finally(() => finish());
  return { stream: client.readable, done, firstChunkAt: first.at };
}
