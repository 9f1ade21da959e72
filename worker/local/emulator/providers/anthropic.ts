// Anthropic Messages API (native, /anthropic/v1/messages): body, SSE event sequence, error shape.
import { type Completion, complete, type FinishReason, normalizeMessages, pieces } from "../completion";
import { isJsonObject, jsonResult, sseResult } from "../http";
import { randomId } from "../ids";
import type { BufferedResult, Call, Result } from "../types";

/** The fields every Messages API message (and a stream's message_start) begins with. */
interface MessageHead {
  id: string;
  type: "message";
  role: "assistant";
  model: string;
}

const ERROR_TYPES: Readonly<Record<number, string>> = {
  400: "invalid_request_error",
  401: "authentication_error",
  403: "permission_error",
  404: "not_found_error",
  413: "request_too_large",
  429: "rate_limit_error",
  500: "api_error",
  529: "overloaded_error",
};
const STOP_REASONS: Readonly<Record<FinishReason, string>> = { stop: "end_turn", length: "max_tokens" };

export function errorResult(status: number, message: string, type?: string): BufferedResult {
  const errorType = type ?? ERROR_TYPES[status] ?? (status >= 500 ? "api_error" : "invalid_request_error");
  return jsonResult(status, { type: "error", error: { type: errorType, message } });
}

/** Anthropic's own error body for a status, used for faults that give no body. */
export function defaultErrorResult(status: number): BufferedResult {
  const messages: Readonly<Record<number, string>> = {
    429: "Number of requests has exceeded your rate limit.",
    529: "Overloaded",
  };
  return errorResult(
    status,
    messages[status] ?? (status >= 500 ? "Internal server error" : `Request failed with status ${status}.`),
  );
}

export function keyErrorResult(): BufferedResult {
  return errorResult(401, "invalid x-api-key", "authentication_error");
}

function invalid(message: string): BufferedResult {
  return errorResult(400, message, "invalid_request_error");
}

function sse(type: string, data: unknown): string {
  return `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
}

function streamEvents(message: MessageHead, completion: Completion): string[] {
  const start = {
    ...message,
    content: [],
    stop_reason: null,
    stop_sequence: null,
    usage: { input_tokens: completion.promptTokens, output_tokens: 1 },
  };
  const out = [
    sse("message_start", { type: "message_start", message: start }),
    sse("content_block_start", {
      type: "content_block_start",
      index: 0,
      content_block: { type: "text", text: "" },
    }),
    sse("ping", { type: "ping" }),
  ];
  for (const text of pieces(completion)) {
    out.push(
      sse("content_block_delta", { type: "content_block_delta", index: 0, delta: { type: "text_delta", text } }),
    );
  }
  out.push(sse("content_block_stop", { type: "content_block_stop", index: 0 }));
  out.push(
    sse("message_delta", {
      type: "message_delta",
      delta: { stop_reason: STOP_REASONS[completion.finishReason], stop_sequence: null },
      usage: { output_tokens: completion.completionTokens },
    }),
  );
  out.push(sse("message_stop", { type: "message_stop" }));
  return out;
}

/** POST /v1/messages. */
export function messages(call: Call): Result {
  if (!call.headers["anthropic-version"]) return invalid("anthropic-version: header is required");
  const body = call.json;
  if (call.parseError || !isJsonObject(body)) {
    return invalid("There was an error parsing the body of your request.");
  }
  if (typeof body.model !== "string" || body.model === "") return invalid("model: Field required");
  if (body.max_tokens === undefined) return invalid("max_tokens: Field required");
  if (typeof body.max_tokens !== "number" || !Number.isInteger(body.max_tokens) || body.max_tokens < 1) {
    return invalid("max_tokens: Input should be greater than or equal to 1");
  }
  if (!Array.isArray(body.messages)) return invalid("messages: Field required");
  if (body.messages.length === 0) return invalid("messages: at least one message is required");
  const completion = complete(normalizeMessages(body.messages, body.system), body.model, body.max_tokens);
  const message: MessageHead = { id: `msg_${randomId(24)}`, type: "message", role: "assistant", model: body.model };
  const result: Result =
    body.stream === true
      ? sseResult(streamEvents(message, completion))
      : jsonResult(200, {
          ...message,
          content: [{ type: "text", text: completion.text }],
          stop_reason: STOP_REASONS[completion.finishReason],
          stop_sequence: null,
          usage: { input_tokens: completion.promptTokens, output_tokens: completion.completionTokens },
        });
  result.usage = {
    prompt_tokens: completion.promptTokens,
    completion_tokens: completion.completionTokens,
    total_tokens: completion.promptTokens + completion.completionTokens,
  };
  return result;
}
