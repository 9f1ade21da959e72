// What OpenAI's Chat Completions API checks of a request before it generates, each failure as
// its 400 {error: {message, type, param, code}}: the fields it knows, the roles and content part
// types, the numeric ranges, and what reasoning models refuse. Only for OpenAI itself: the
// OpenAI-compatible providers behind the same handler each have rules of their own.

import type { BufferedResult, JsonObject } from "../types";
import { errorResult } from "./openai";
import { typeWord as kindOf, listed } from "./responses-errors";
import { isReasoningModel, SERVICE_TIERS } from "./responses-request";

// Every body field of the openai SDK's CompletionCreateParams (openai-python 3.63.0), plus `stream`.
// biome-ignore format: a compact list of names
export const KNOWN_CHAT_FIELDS = new Set([
  "audio", "frequency_penalty", "function_call", "functions", "logit_bias", "logprobs", "max_completion_tokens",
  "max_tokens", "messages", "metadata", "modalities", "model", "moderation", "n", "parallel_tool_calls",
  "prediction", "presence_penalty", "prompt_cache_key", "prompt_cache_options", "prompt_cache_retention",
  "reasoning_effort", "response_format", "safety_identifier", "seed", "service_tier", "stop", "store",
  "stream_options", "temperature", "tool_choice", "tools", "top_logprobs", "top_p", "user", "verbosity",
  "web_search_options", "stream",
]);

const ROLES = ["system", "assistant", "user", "function", "tool", "developer"];
const PART_TYPES = ["text", "image_url", "input_audio", "refusal", "audio", "file"];
const FUNCTION_NAME = /^[a-zA-Z0-9_-]+$/;

function bad(message: string, param: string | null, code: string | null): BufferedResult {
  return errorResult(400, message, "invalid_request_error", code, param);
}

interface NumberRule {
  integer: boolean;
  min?: number;
  max?: number;
}

// OpenAI's documented ranges.
const NUMBERS: Readonly<Record<string, NumberRule>> = {
  temperature: { integer: false, min: 0, max: 2 },
  top_p: { integer: false, min: 0, max: 1 },
  presence_penalty: { integer: false, min: -2, max: 2 },
  frequency_penalty: { integer: false, min: -2, max: 2 },
  n: { integer: true, min: 1, max: 128 },
  max_tokens: { integer: true, min: 1 },
  max_completion_tokens: { integer: true, min: 1 },
  top_logprobs: { integer: true, min: 0, max: 20 },
  seed: { integer: true },
};

function checkNumber(param: string, value: unknown, rule: NumberRule): BufferedResult | null {
  const word = rule.integer ? "integer" : "decimal";
  if (typeof value !== "number" || (rule.integer && !Number.isInteger(value))) {
    return bad(
      `Invalid type for '${param}': expected ${rule.integer ? "an integer" : "a decimal"}, but got ${kindOf(value)} instead.`,
      param,
      "invalid_type",
    );
  }
  if (rule.min !== undefined && value < rule.min) {
    return bad(
      `Invalid '${param}': ${word} below minimum value. Expected a value >= ${rule.min}, but got ${value} instead.`,
      param,
      `${word}_below_min_value`,
    );
  }
  if (rule.max !== undefined && value > rule.max) {
    return bad(
      `Invalid '${param}': ${word} above maximum value. Expected a value <= ${rule.max}, but got ${value} instead.`,
      param,
      `${word}_above_max_value`,
    );
  }
  return null;
}

function checkMessages(messages: readonly unknown[]): BufferedResult | null {
  for (const [i, message] of messages.entries()) {
    const role = (message as JsonObject | null)?.role;
    if (typeof role !== "string" || !ROLES.includes(role)) {
      return bad(
        `Invalid value: '${String(role)}'. Supported values are: ${listed(ROLES)}.`,
        `messages[${i}].role`,
        "invalid_value",
      );
    }
    if (role === "tool" && typeof (message as JsonObject).tool_call_id !== "string") {
      return bad(
        `Missing required parameter: 'messages[${i}].tool_call_id'.`,
        `messages[${i}].tool_call_id`,
        "missing_required_parameter",
      );
    }
    const content = (message as JsonObject).content;
    if (!Array.isArray(content)) continue;
    for (const [k, part] of content.entries()) {
      const type = (part as JsonObject | null)?.type;
      if (typeof type !== "string" || !PART_TYPES.includes(type)) {
        return bad(
          `Invalid value: '${String(type)}'. Supported values are: ${listed(PART_TYPES)}.`,
          `messages[${i}].content[${k}].type`,
          "invalid_value",
        );
      }
    }
  }
  return null;
}

function checkTools(tools: unknown): BufferedResult | null {
  if (!Array.isArray(tools)) return null;
  for (const [i, tool] of tools.entries()) {
    const name = ((tool as JsonObject | null)?.function as JsonObject | undefined)?.name;
    if (typeof name === "string" && !FUNCTION_NAME.test(name)) {
      return bad(
        `Invalid 'tools[${i}].function.name': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.`,
        `tools[${i}].function.name`,
        "invalid_value",
      );
    }
  }
  return null;
}

/** What reasoning models (o-series, GPT-5) refuse: max_tokens, non-default sampling; what only they take. */
function checkModel(body: JsonObject, model: string): BufferedResult | null {
  if (!isReasoningModel(model)) {
    if (body.reasoning_effort !== undefined && body.reasoning_effort !== null) {
      return bad(
        "Unsupported parameter: 'reasoning_effort' is not supported with this model.",
        "reasoning_effort",
        "unsupported_parameter",
      );
    }
    return null;
  }
  if (body.max_tokens !== undefined && body.max_tokens !== null) {
    return bad(
      "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
      "max_tokens",
      "unsupported_parameter",
    );
  }
  for (const param of ["temperature", "top_p"]) {
    const value = body[param];
    if (value === undefined || value === null || value === 1) continue;
    return bad(
      `Unsupported value: '${param}' does not support ${String(value)} with this model. Only the default (1) value is supported.`,
      param,
      "unsupported_value",
    );
  }
  return null;
}

/** The request's first problem as OpenAI answers it, or null when OpenAI would take it. */
export function checkChatRequest(body: JsonObject, model: string): BufferedResult | null {
  for (const key of Object.keys(body)) {
    if (!KNOWN_CHAT_FIELDS.has(key)) return bad(`Unrecognized request argument supplied: ${key}`, null, null);
  }
  for (const [param, rule] of Object.entries(NUMBERS)) {
    const value = body[param];
    if (value === undefined || value === null) continue;
    const problem = checkNumber(param, value, rule);
    if (problem) return problem;
  }
  const tier = body.service_tier;
  if (tier !== undefined && tier !== null && !SERVICE_TIERS.includes(String(tier))) {
    return bad(
      `Invalid value: '${String(tier)}'. Supported values are: ${listed(SERVICE_TIERS)}.`,
      "service_tier",
      "invalid_value",
    );
  }
  const stop = body.stop;
  if (Array.isArray(stop) && stop.length > 4) {
    return bad(
      `Invalid 'stop': array too long. Expected an array with maximum length 4, but got an array with length ${stop.length} instead.`,
      "stop",
      "array_above_max_length",
    );
  }
  for (const param of ["stream", "logprobs", "parallel_tool_calls", "store"]) {
    const value = body[param];
    if (value !== undefined && value !== null && typeof value !== "boolean") {
      return bad(
        `Invalid type for '${param}': expected a boolean, but got ${kindOf(value)} instead.`,
        param,
        "invalid_type",
      );
    }
  }
  const messages: readonly unknown[] = Array.isArray(body.messages) ? body.messages : [];
  return checkMessages(messages) ?? checkTools(body.tools) ?? checkModel(body, model);
}
