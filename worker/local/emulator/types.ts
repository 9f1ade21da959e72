// The emulator's data model, shared by its modules: config, results, routes and calls, per-request
// options, the request log, faults and the state object. Types only: nothing here exists at run
// time; the code that builds and checks each type is named in its section.
import type { IncomingHttpHeaders } from "node:http";

/** A chat message as the emulator's answers read it (completion.ts): its role and its text. */ export interface NormalizedMessage {
  role: string;
  text: string;
}

// ---- JSON from clients and the HTTP result a handler returns (http.ts)

/** A parsed JSON object from a client (request bodies, control payloads, headers holding JSON). */
export type JsonObject = Record<string, unknown>;

/**
 * Request headers by lower-case name. Node joins repeated headers into one string; only
 * set-cookie arrives as a list, and the emulator never reads it.
 */
export type RequestHeaders = Readonly<Record<string, string | undefined>>;

/** Response headers the emulator sets (faults may add any JSON value; node stringifies it). */
export type HeaderMap = Record<string, string>;

/** OpenAI-style token usage, recorded in the log and used for custom costs. */
export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

interface ResultBase {
  status: number;
  headers: HeaderMap;
  /** Token usage of a provider answer; null when the answer carries none (embeddings on Workers AI). */
  usage?: Usage | null;
  /** Fault knob: pause between streamed chunks (overrides the config's streamChunkDelayMs). */
  chunkDelayMs?: number;
  /** Fault knob: drop the connection after this many chunks (half the body when buffered). */
  cutAfterChunks?: number;
  /** Fault knob: drop the connection before any answer (status 0 in the log). */
  resetConnection?: boolean;
}

export interface BufferedResult extends ResultBase {
  body: string;
  chunks?: undefined;
}

/** What a stream fault's in-band error is: an `error` event, or (Responses API only) `response.failed`. */
export type StreamErrorEvent = "error" | "response.failed";

export interface StreamedResult extends ResultBase {
  /** Text, or base64 of the bytes when `binary` (AWS's event stream). */
  chunks: string[];
  binary?: boolean;
  body?: undefined;
  /**
   * The provider's in-band failure after `delivered` chunks (fault errorAfterChunks), when its
   * shape depends on the stream (Responses API sequence numbers); else routes.ts picks one.
   */
  failStream?: (delivered: number, event: StreamErrorEvent) => string[];
}

export type Result = BufferedResult | StreamedResult;

/** How a response went out: see writeResult. "pending" until it has. */
export type Delivery = "pending" | "complete" | "cut" | "reset" | "aborted";

// ---- Configuration (validated in config.ts)

export type RateLimitTechnique = "fixed" | "sliding";

export interface RateLimit {
  limit: number;
  /** Window length in seconds. */
  interval: number;
  technique: RateLimitTechnique;
}

/** One emulated gateway. Fields the emulator does not know are kept as given (and shown). */
export interface GatewayConfig {
  authentication: boolean;
  /** The cf-aig-authorization token; only checked (and required) when authentication is on. */
  token: unknown;
  cacheTtl: number;
  collectLogs: boolean;
  rateLimit: RateLimit;
  /** Providers whose key is stored on the gateway: requests may omit the provider key. */
  byokProviders: string[];
}

export interface EmulatorConfig {
  accountId: string;
  gateways: Record<string, GatewayConfig>;
  providerKeys: Record<string, string>;
  /** The account's AI Gateway custom providers (`custom-<slug>`), each a server in OpenAI's wire. */
  customProviders: string[];
  streamChunkDelayMs: number;
}

/** The config as GET /__emulator/config shows it: secrets masked. */
export interface MaskedConfig extends Omit<EmulatorConfig, "providerKeys"> {
  providerKeys: Record<string, unknown>;
}

// ---- Routes and provider calls (routes.ts)

/**
 * Error shape and key check of a native provider: OpenAI, Anthropic, Workers AI, or one of the
 * OpenAI-compatible providers (OpenAI's chat wire format, their own error bodies).
 */
export type Family =
  | "openai"
  | "anthropic"
  | "workers-ai"
  | "groq"
  | "mistral"
  | "deepseek"
  | "grok"
  | "google-ai-studio"
  | "gemini"
  | "vertex"
  | "azure"
  | "bedrock"
  | "custom";

export type Op =
  | "chat"
  | "embeddings"
  | "responses"
  | "retrieve"
  | "messages"
  | "count_tokens"
  | "run"
  | "generate_content"
  | "stream_generate_content"
  | "gemini_count_tokens"
  | "converse"
  | "converse_stream"
  | "invoke"
  | "invoke_stream"
  | "invoke_count_tokens";

/** The Universal endpoint: the gateway root, a JSON array of provider steps. */
export interface UniversalRoute {
  universal: true;
}

export interface ProviderRoute {
  universal?: undefined;
  /** First path segment after the gateway id: the provider slug, or "compat". */
  head: string;
  /** The rest of the path, joined with "/". */
  endpoint: string;
  family: Family;
  op: Op;
  compat?: boolean;
  /** Workers AI run routes name the model in the path. */
  pathModel?: string;
  /**
   * A call through the Workers AI binding (env.AI.run via miniflare's remote proxy): no
   * provider key, and the answer is the bare model output (no v4 envelope), see binding.ts.
   */
  binding?: boolean;
}

export type Route = UniversalRoute | ProviderRoute;

/** A request body: parsed JSON (undefined when empty or invalid) and whether parsing failed. */
export interface ParsedBody {
  json: unknown;
  parseError: boolean;
}

/** A request to one fake provider, ready to be generated. */
export interface Call {
  route: ProviderRoute;
  family: Family;
  op: Op;
  provider: string;
  /** The model to report: without the compat provider prefix, or the path model. */
  model: string | null;
  /** `model` exactly as the body gave it. */
  bodyModel: string | null;
  json: unknown;
  parseError: boolean;
  headers: RequestHeaders;
  /** The request's query string (Gemini's `alt=sse` and `key=`). */
  query: URLSearchParams;
  stream: boolean;
  /** The body and the path as they came, still encoded (what a SigV4 signature covers). */
  rawBody: string;
  rawPath: string;
  /** Set when the gateway itself rejects the call (compat model format or provider). */
  error?: Result;
}

// ---- Options from cf-aig-* headers (options.ts)

/** cf-aig-metadata values: JSON scalars (objects and arrays are rejected). */
export type Metadata = Record<string, string | number | boolean | null>;

/** cf-aig-custom-cost: USD per token in / out, or a total. Other fields are kept as given. */
export interface CustomCost {
  per_token_in?: number;
  per_token_out?: number;
  total_cost?: number;
}

/** A parsed header: its value (null when the header is absent), or why it is invalid. */
export type HeaderParse<T> = { value: T | null; error?: undefined } | { error: string; value?: undefined };

/** Where a response may be cached: the cache key and its TTL in seconds. */
export interface CachePlan {
  key: string;
  ttl: number;
}

export interface RetryPolicy {
  attempts: number;
  delayMs: number;
  /** "constant" | "linear" | "exponential"; any other value (or type) behaves as "constant". */
  backoff: unknown;
  timeoutMs: number | undefined;
}

// ---- Request log and faults (state.ts, control.ts; the state object's type is state.ts's)

export type CacheStatus = "HIT" | "MISS";

/** One streamed chunk as it left: `at` is wall-clock epoch milliseconds (fractional). */
export interface SentChunk {
  at: number;
  data: string;
}

/** An answer as the client got it: its status, and its body or its stream's chunks. */
export interface RecordedAnswer {
  status: number;
  body?: string;
  chunks?: SentChunk[];
}

/** One request under /v1/, as GET /__emulator/requests lists it (with `time` as ISO 8601). */
export interface LogEntry {
  logId: string;
  /** Epoch milliseconds when the request arrived. */
  time: number;
  method: string | undefined;
  path: string;
  /** The query string, without its `?` ("" when none). */
  query: string;
  headers: IncomingHttpHeaders;
  /** Parsed JSON body, the raw text (truncated) when it is not JSON, or null when empty. */
  body: unknown;
  /** The gateway id the request named (path segment, or the binding's options.gateway.id). */
  gatewayId: string | null;
  /** The binding name (MF-Binding, e.g. "AI") for a Workers AI binding call; null over HTTP. */
  binding: string | null;
  /** A binding call's options.gateway as sent (id, metadata, skipCache, cacheTtl, ...). */
  gatewayOptions: JsonObject | null;
  status: number;
  cacheStatus: CacheStatus | null;
  provider: string | null;
  model: string | null;
  stream: boolean;
  /** Index of the Universal step that answered. */
  step: number | null;
  /** Id of the fault that fired. */
  fault: string | null;
  metadata: Metadata | null;
  customCost: CustomCost | null;
  cost: number | null;
  usage: Usage | null;
  /** Whether the gateway would keep this log (collectLogs / cf-aig-collect-log). */
  collected: boolean;
  delivery: Delivery;
  durationMs: number | null;
}

/** Which requests a fault fires for; every given field must match. */
export interface FaultMatch {
  // Compared as given: a test can register any JSON value, and only equal names match.
  model?: unknown;
  provider?: unknown;
  /** Substring of the request path (compared as a string). */
  path?: unknown;
  metadata?: JsonObject;
}

/** A fault as POST /__emulator/faults takes it (validated in control.ts). */
export interface FaultSpec {
  match?: FaultMatch;
  /** How many requests it fires for; -1 = until cleared. */
  times?: number;
  status?: number;
  /** Literal response body: a string is sent as text, anything else as JSON. */
  body?: unknown;
  /** Extra response headers; any JSON value, node writes it stringified. */
  headers?: JsonObject;
  delayMs?: number;
  chunkDelayMs?: number;
  cutAfterChunks?: number;
  /**
   * Stream only: deliver this many chunks of the real answer, then the provider's in-band error
   * (OpenAI chat `data: {"error": ...}`, Anthropic `event: error`, Responses API `event: error`
   * or `response.failed`) and end the stream cleanly.
   */
  errorAfterChunks?: number;
  /** Which in-band error the Responses API sends for errorAfterChunks; default "error". */
  errorEvent?: StreamErrorEvent;
  /** Answer with this AI Gateway error code instead of a provider response. */
  gatewayError?: number;
  /**
   * Answer nothing: the connection is dropped before a status line, as when AI Gateway cannot
   * be reached (the client's fetch fails with a network error).
   */
  resetConnection?: boolean;
}

export interface Fault extends FaultSpec {
  id: string;
  match: FaultMatch;
  times: number;
}

/** What FaultBook.take matches against. */
export interface FaultQuery {
  /** Every name the request's model goes by (body model, model, provider/model). */
  models: readonly (string | null)[];
  provider: string;
  path: string;
  metadata: Metadata | null;
}

/** A buffered response as the cache keeps it. */
export interface CachedResponse {
  status: number;
  headers: HeaderMap;
  body: string;
  usage: Usage | null | undefined;
}

/**
 * A Responses API response kept for previous_response_id. The conversation it continues is
 * `previous`'s, then `turn`: this request's input and its output (never its instructions,
 * which OpenAI does not carry over).
 */
export interface StoredResponse {
  id: string;
  previous: StoredResponse | null;
  /** This request's input items and output items, as the fake model reads them. */
  turn: NormalizedMessage[];
  /** call_ids of the function_call items of this turn (input and output). */
  calls: string[];
  /** call_ids of the function_call_output items of this turn's input. */
  outputs: string[];
  /** The response as GET responses/{id} returns it once it is done. */
  body?: JsonObject;
  /** A background run: when it completes (before then it is in progress). */
  readyAt?: number;
}
