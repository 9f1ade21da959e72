// Anthropic's Messages API for Anthropic clients (the SDKs, Claude Code), passed through: the
// request as the client wrote it (our model id swapped for Anthropic's, its anthropic-version
// and anthropic-beta kept), the answer byte for byte, the stream event by event. Usage from
// `message_start` and the cumulative `message_delta`, cache reads and writes included.

import { HttpError } from "../../lib/errors";
import { cleanMessage, credentialsError, errorJson, gatewayError } from "../gateway";
import { type EventSourceMessage, outputOf, watchedEvents } from "../sse";
import type { Answer, MeteredStream, UpstreamCall } from "../types";
import { authHeaders } from "./endpoint";
import { deltaOutput, messageOutput } from "./output";
import { type AnthropicUsage, readExtras, readUsage } from "./usage";

export const COUNT_TOKENS_PATH = "anthropic/v1/messages/count_tokens";

/** Anthropic's headers: the Worker's key, the client's API version and betas. */
export function passthroughAuth(call: UpstreamCall, client: Headers): Record<string, string> {
  const headers = authHeaders(call);
  const version = client.get("anthropic-version");
  const beta = client.get("anthropic-beta");
  if (version) headers["anthropic-version"] = version;
  if (beta) headers["anthropic-beta"] = beta;
  return headers;
}

export function messageAnswer(raw: string): Answer {
  try {
    const message = JSON.parse(raw) as { usage?: AnthropicUsage };
    return {
      text: raw,
      said: messageOutput(message),
      usage: readUsage(message.usage),
      extras: readExtras(message.usage),
    };
  } catch {
    return { text: raw, said: raw, usage: null };
  }
}

/** Anthropic's error as the Anthropic client should see it: its status and message; our
 * credentials refused is ours (502), AI Gateway's own errors are AI Gateway's. */
export async function passthroughError(response: Response): Promise<HttpError> {
  const body = (await errorJson(response)) as { error?: { message?: unknown; type?: unknown } } | null;
  const fromGateway = gatewayError(body);
  if (fromGateway) return fromGateway;
  if (response.status === 401 || response.status === 403) return credentialsError();
  const message = cleanMessage(String(body?.error?.message ?? `Anthropic answered HTTP ${response.status}.`));
  const type = body?.error?.type;
  return new HttpError(response.status, message, { providerType: typeof type === "string" ? type : undefined });
}

/** Anthropic's in-band stream error (the SDKs raise on it). */
function anthropicStreamError(): string {
  const error = { type: "api_error", message: "The model's stream ended before it was complete." };
  return `event: error\ndata: ${JSON.stringify({ type: "error", error })}\n\n`;
}

/** The stream passed through; usage from message_start and message_delta, text from deltas
 * (read only when it counts). */
export function meterMessagesStream(upstream: ReadableStream<Uint8Array>, signal?: AbortSignal): MeteredStream {
  let usage: AnthropicUsage = {};
  let final = false;
  let stopped = false; // message_stop (or Anthropic's own error event) seen
  // the deltas' JSON, read only if their text counts (no final usage came: a cut stream)
  const deltas: string[] = [];
  const event = (message: EventSourceMessage): void => {
    const type = message.event ?? "";
    stopped ||= type === "message_stop" || type === "error";
    if (type === "content_block_delta") {
      deltas.push(message.data);
    } else if (type === "message_start" || type === "message_delta") {
      try {
        const data = JSON.parse(message.data) as { message?: { usage?: AnthropicUsage }; usage?: AnthropicUsage };
        usage = { ...usage, ...(type === "message_start" ? data.message?.usage : data.usage) };
        final ||= type === "message_delta";
      } catch {
        // malformed: metered from what came before
      }
    }
  };
  const watch = { event, complete: () => stopped, truncated: () => anthropicStreamError() };
  return watchedEvents(upstream, watch, signal, () => ({
    usage: readUsage(usage),
    get text() {
      return outputOf(deltas, deltaOutput);
    },
    complete: final,
    extras: readExtras(usage),
  }));
}
