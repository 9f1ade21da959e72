// The fields of a request body that the gateway itself reads: the model, whether it streams,
// the output caps and `n` the worst case is reserved from, and the stream's usage flag the
// meter reads. Each is checked for its type and range; everything else (roles, content blocks,
// tool kinds, sampling parameters, fields a provider shipped last week) is the provider's to
// judge, and its 4xx comes back uncharged (docs/decisions/0025). A missing required field is
// `missing_required_parameter`, a wrong one `invalid_type` or `invalid_value`, each naming it.

import { HttpError } from "../lib/errors";
import type { ChatBody, MessagesBody, ResponsesBody } from "../protocol/bodies";

type Body = Record<string, unknown>;

// OpenAI's own limit on `n`: the worst case is every choice at the full output.
const MAX_CHOICES = 128;

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return "an object";
  if (typeof value === "string") return "a string";
  if (typeof value === "number") return Number.isInteger(value) ? "an integer" : "a decimal";
  return `a ${typeof value}`;
}

function missing(param: string): HttpError {
  return new HttpError(400, `Missing required parameter: '${param}'.`, {
    param,
    code: "missing_required_parameter",
  });
}

function wrongType(param: string, expected: string, value: unknown): HttpError {
  return new HttpError(400, `Invalid type for '${param}': expected ${expected}, but got ${describe(value)} instead.`, {
    param,
    code: "invalid_type",
  });
}

/** An optional count the worst case multiplies by: an integer from 1 to `max`, or absent/null. */
function count(body: Body, param: string, max = Number.MAX_SAFE_INTEGER): void {
  const value = body[param];
  if (value === undefined || value === null) return;
  // a safe integer: 1e308 is an integer too, and would make the worst case Infinity
  if (typeof value !== "number" || !Number.isSafeInteger(value)) throw wrongType(param, "an integer", value);
  if (value < 1 || value > max) {
    throw new HttpError(400, `Invalid '${param}': expected an integer from 1 to ${max}, but got ${value} instead.`, {
      param,
      code: "invalid_value",
    });
  }
}

function optionalBoolean(value: unknown, param: string): void {
  if (value !== undefined && value !== null && typeof value !== "boolean") throw wrongType(param, "a boolean", value);
}

function optionalString(value: unknown, param: string): void {
  if (value !== undefined && value !== null && typeof value !== "string") throw wrongType(param, "a string", value);
}

function optionalObject(value: unknown, param: string): value is Body | undefined | null {
  if (value === undefined || value === null) return true;
  if (typeof value !== "object" || Array.isArray(value)) throw wrongType(param, "an object", value);
  return true;
}

function requiredString(body: Body, param: string): void {
  if (body[param] === undefined) throw missing(param);
  optionalString(body[param], param);
  if (body[param] === null) throw wrongType(param, "a string", null);
}

/** OpenAI Chat Completions: the model (a tenant default stands in when absent), messages, the caps. */
export function chatFields(body: Body): ChatBody {
  optionalString(body.model, "model");
  if (body.messages === undefined) throw missing("messages");
  if (!Array.isArray(body.messages)) throw wrongType("messages", "an array", body.messages);
  optionalBoolean(body.stream, "stream");
  if (optionalObject(body.stream_options, "stream_options") && body.stream_options) {
    optionalBoolean((body.stream_options as Body).include_usage, "stream_options.include_usage");
  }
  count(body, "max_tokens");
  count(body, "max_completion_tokens");
  count(body, "n", MAX_CHOICES);
  return body as ChatBody;
}

/** OpenAI Responses: the model, the cap, and the stored state a request continues. */
export function responsesFields(body: Body): ResponsesBody {
  optionalString(body.model, "model");
  optionalBoolean(body.stream, "stream");
  count(body, "max_output_tokens");
  optionalString(body.previous_response_id, "previous_response_id");
  const conversation = body.conversation;
  if (conversation !== undefined && conversation !== null && typeof conversation !== "string") {
    if (typeof conversation !== "object" || Array.isArray(conversation)) {
      throw wrongType("conversation", "a string or an object", conversation);
    }
  }
  return body as ResponsesBody;
}

/** Anthropic Messages: model and max_tokens are required there, and the worst case needs both. */
export function messagesFields(body: Body): MessagesBody {
  requiredString(body, "model");
  if (body.max_tokens === undefined) throw missing("max_tokens");
  count(body, "max_tokens");
  if (body.max_tokens === null) throw wrongType("max_tokens", "an integer", null);
  optionalBoolean(body.stream, "stream");
  return body as MessagesBody;
}

/** Anthropic count_tokens: free, so only the model the key must be allowed. */
export function countTokensFields(body: Body): Body & { model: string } {
  requiredString(body, "model");
  return body as Body & { model: string };
}

/** Embeddings: the model (a tenant default stands in when absent); input is priced as it comes. */
export function embeddingsFields(body: Body): Body & { model?: unknown } {
  optionalString(body.model, "model");
  return body;
}

/** Workers AI run: the output cap the worst case is reserved from (the stack's when absent). */
export function runFields(body: Body): Body & { max_tokens?: number | null } {
  count(body, "max_tokens");
  return body as Body & { max_tokens?: number | null };
}
