// What every provider module offers the one chat route (worker/src/routes/chat.ts): send a bounded
// OpenAI chat request upstream in the provider's own wire format, and turn what comes back
// (an answer, a stream, an error) into OpenAI's, with the usage of every token kind.

import type { HttpError } from "../lib/errors";
import type { Extras } from "../pricing/extras";
import type { ChatBody } from "../protocol/bodies";
import type { Env } from "../protocol/env";
import type { Price, Principal } from "../protocol/policy";

/** Every token kind a price can price. `promptTokens` counts all input, cached ones included. */
export interface TokenUsage {
  promptTokens: number;
  completionTokens: number;
  /** Input read from a prompt cache (priced at `cachedIn`). */
  cachedTokens: number;
  /** Input written to a prompt cache (priced at `cacheWrite`). */
  cacheWriteTokens: number;
  /** Of those: written to a 1-hour cache (priced at `cacheWrite1h`). */
  cacheWrite1hTokens?: number;
}

/** One request to a model's provider, whatever the route. */
export interface UpstreamCall {
  env: Env;
  principal: Principal;
  requestId: string;
  /** The client's route (its path pattern, e.g. `/v1/chat/completions`). */
  route: string;
  /** The catalog id (`anthropic/claude-sonnet-4-5`), its provider, and what the provider calls it. */
  model: string;
  provider: string;
  upstreamModel: string;
  price: Price;
  /** The client's request signal: aborted when it goes away. */
  signal?: AbortSignal | undefined;
  /** Workers AI only: straight to Workers AI, without AI Gateway (it is down). */
  direct?: boolean;
  /** The client's own cache headers, when its org lets clients decide (clientCacheControl). */
  clientCache?: { skip: boolean; ttl: number | null };
  /** Never from AI Gateway's cache (an answer the provider stores: its id is its caller's). */
  uncacheable?: boolean;
}

export interface ChatCall extends UpstreamCall {
  body: ChatBody;
  /** Output tokens per choice the request may produce (the client's, else the stack's cap). */
  maxTokens: number;
}

/**
 * A complete answer: what the client gets (`text`), the model's own output in it (`said`: what
 * an estimate counts when no usable usage came), and the usage it reported.
 */
export interface Answer {
  text: string;
  said: string;
  usage: TokenUsage | null;
  /** What it reports beyond tokens (billed tool calls, the tier that served it). */
  extras?: Extras;
  contentType?: string;
}

/** What a stream was seen to use. `complete`: its final usage arrived (else the output so far
 * is estimated from `text`, never below what was reported). */
export interface Metered {
  usage: TokenUsage | null;
  text: string;
  complete: boolean;
  /** What it reports beyond tokens (billed tool calls, the tier that served it). */
  extras?: Extras;
}

/** A stream on its way to the client, and what it was seen to use once it ends. */
export interface MeteredStream {
  stream: ReadableStream<Uint8Array>;
  done: Promise<Metered>;
  /** When (Date.now()) the first bytes went to the client; null before (or for none). */
  firstChunkAt(): number | null;
}

export interface ChatProvider {
  /** Sends the call upstream; the answer as it came (not yet checked for an error status). */
  send(call: ChatCall): Promise<Response>;
  /** A complete upstream answer (its text) → the OpenAI chat completion the client gets. */
  completion(text: string, call: ChatCall): Answer;
  /** An upstream stream → OpenAI chat chunks, metered; `done` when it ends or the client goes. */
  stream(upstream: ReadableStream<Uint8Array>, call: ChatCall, options: { clientWantsUsage: boolean }): MeteredStream;
  /** A non-2xx upstream answer → the one OpenAI-shaped error the client sees. */
  error(response: Response): Promise<HttpError>;
}
