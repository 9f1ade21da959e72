// Claude on Bedrock in Anthropic's own format, for the Messages route (the Anthropic SDKs,
// Claude Code): InvokeModel (`/model/{id}/invoke`, `/invoke-with-response-stream`) takes the
// Messages body without `model` and `stream`, with `anthropic_version: bedrock-2023-05-31` and
// the client's betas as `anthropic_beta`, and answers Anthropic's message as it is. Its stream is
// AWS's event stream whose `chunk` messages carry each Anthropic event (base64 in `bytes`):
// decoded here into Anthropic's server-sent events, which the Messages route meters as it
// meters Anthropic's own. An exception message is Anthropic's `error` event; a cut or corrupt
// stream just ends (the meter then sends the route's error event and estimates). CountTokens
// (`/model/{id}/count-tokens`) counts the same body.

import { postToGateway } from "../gateway";
import type { UpstreamCall } from "../types";
import { authHeaders, gatewayPath } from "./endpoint";
import { EventStreamDecoder } from "./eventstream";

export const ANTHROPIC_VERSION = "bedrock-2023-05-31";

type Json = Record<string, unknown>;

/** Whether a Bedrock model id is Claude (its own id, or a cross-region profile's: us.anthropic.…). */
export function isClaude(model: string): boolean {
  return /(^|\.)anthropic\.claude-/.test(model);
}

/** The Messages body as InvokeModel takes it. */
export function invokeBody(body: Json, betas: string | null): Json {
  const { model: _model, stream: _stream, ...rest } = body;
  const beta = (betas ?? "")
    .split(",")
    .map((b) => b.trim())
    .filter((b) => b !== "");
  return { anthropic_version: ANTHROPIC_VERSION, ...rest, ...(beta.length > 0 ? { anthropic_beta: beta } : {}) };
}

function base64(bytes: Uint8Array): string {
  let binary = "";
  // in slices: spreading a whole large body into one call would overflow the stack
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

async function post(call: UpstreamCall, bedrockPath: string, payload: Json): Promise<Response> {
  const auth = await authHeaders(call, bedrockPath, JSON.stringify(payload));
  return postToGateway(call, gatewayPath(bedrockPath), payload, auth);
}

/** A Messages request to Claude on Bedrock, streamed or not. */
export function invokeMessages(call: UpstreamCall, body: Json, clientHeaders: Headers): Promise<Response> {
  const method = body.stream === true ? "invoke-with-response-stream" : "invoke";
  return post(
    call,
    `/model/${encodeURIComponent(call.upstreamModel)}/${method}`,
    invokeBody(body, clientHeaders.get("anthropic-beta")),
  );
}

/** count_tokens for Claude on Bedrock: CountTokens over the InvokeModel body it would send. */
export async function countMessageTokens(call: UpstreamCall, body: Json, clientHeaders: Headers): Promise<Response> {
  const invoke = JSON.stringify(
    invokeBody({ ...body, max_tokens: body.max_tokens ?? 1 }, clientHeaders.get("anthropic-beta")),
  );
  const payload = { input: { invokeModel: { body: base64(new TextEncoder().encode(invoke)) } } };
  const upstream = await post(call, `/model/${encodeURIComponent(call.upstreamModel)}/count-tokens`, payload);
  if (!upstream.ok) return upstream;
  const counted = (await upstream.json()) as { inputTokens?: unknown };
  return new Response(JSON.stringify({ input_tokens: counted.inputTokens }), {
    status: 200,
    headers: { "content-type": "application/json" },
  });
}

const encoder = new TextEncoder();
const utf8 = new TextDecoder();

function sse(event: string, data: Json): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** Anthropic's error types for Bedrock's stream exceptions. */
const EXCEPTION_TYPES: Record<string, string> = {
  throttlingException: "rate_limit_error",
  serviceUnavailableException: "overloaded_error",
  modelTimeoutException: "timeout_error",
  validationException: "invalid_request_error",
};

/** One event-stream message → the Anthropic event it carries, as server-sent events. */
function eventOf(headers: Record<string, unknown>, payload: Uint8Array): string {
  let data: Json;
  try {
    data = JSON.parse(utf8.decode(payload)) as Json;
  } catch {
    return "";
  }
  if (headers[":message-type"] === "exception") {
    const kind = String(headers[":exception-type"] ?? "");
    const message = typeof data.message === "string" ? data.message : "The model provider failed mid-stream.";
    return sse("error", { type: "error", error: { type: EXCEPTION_TYPES[kind] ?? "api_error", message } });
  }
  if (headers[":event-type"] !== "chunk" || typeof data.bytes !== "string") return "";
  let event: Json;
  try {
    event = JSON.parse(utf8.decode(Uint8Array.from(atob(data.bytes), (c) => c.charCodeAt(0)))) as Json;
  } catch {
    return "";
  }
  const { "amazon-bedrock-invocationMetrics": _metrics, ...anthropic } = event;
  return typeof anthropic.type === "string" ? sse(anthropic.type, anthropic) : "";
}

/** Bedrock's event stream of Anthropic events → Anthropic's server-sent events, as bytes arrive. */
export function anthropicEvents(upstream: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
  const decoder = new EventStreamDecoder();
  let broken = false;
  return upstream.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        if (broken) return;
        let out = "";
        for (const { headers, payload } of decoder.push(chunk)) out += eventOf(headers, payload);
        if (decoder.failure !== null) {
          broken = true; // nothing after a corrupt message is believed: the stream ends here
          console.error(JSON.stringify({ event: "upstream_stream_refused", reason: decoder.failure }));
        }
        if (out) controller.enqueue(encoder.encode(out));
        if (broken) controller.terminate();
      },
    }),
  );
}
