// Workers AI native run API (/workers-ai/{model} and /workers-ai/run/{model}): Cloudflare v4
// envelope for results and errors, `data: {"response": ...}` SSE when streaming.
import {
  type Completion,
  complete,
  EMBEDDING_DIMS,
  embeddingInputs,
  embeddingVector,
  type NormalizedMessage,
  normalizeMessages,
  pieces,
} from "../completion";
import { isJsonObject, jsonResult, sseResult } from "../http";
import type { BufferedResult, Call, Result, Usage } from "../types";

const AUTH_ERROR_CODE = 10000; // Cloudflare API "Authentication error"
const BAD_INPUT_CODE = 5006; // Workers AI bad input; exact code/message UNCONFIRMED

function envelope<T>(result: T): { result: T; success: true; errors: []; messages: [] } {
  return { result, success: true, errors: [], messages: [] };
}

export function errorResult(status: number, code: number, message: string): BufferedResult {
  return jsonResult(status, { result: null, success: false, errors: [{ code, message }], messages: [] });
}

/** Cloudflare's v4 error body for a status, used for faults that give no body. */
export function defaultErrorResult(status: number): BufferedResult {
  if (status === 429) return errorResult(429, 3040, "Capacity temporarily exceeded, please try again.");
  if (status >= 500) return errorResult(status, 3043, "Internal server error");
  return errorResult(status, BAD_INPUT_CODE, `Request failed with status ${status}.`);
}

export function keyErrorResult(): BufferedResult {
  return errorResult(401, AUTH_ERROR_CODE, "Authentication error");
}

function usageOf(completion: Completion): Usage {
  return {
    prompt_tokens: completion.promptTokens,
    completion_tokens: completion.completionTokens,
    total_tokens: completion.promptTokens + completion.completionTokens,
  };
}

function embed(model: string | null, text: unknown): Result {
  const inputs = embeddingInputs(text);
  if (inputs === null) {
    return errorResult(400, BAD_INPUT_CODE, "AiError: Bad input: 'text' must be a string or an array of strings");
  }
  const result = jsonResult(
    200,
    envelope({
      shape: [inputs.length, EMBEDDING_DIMS],
      data: inputs.map((item) => embeddingVector(model, item)),
      pooling: "mean",
    }),
  );
  result.usage = null;
  return result;
}

/** POST /workers-ai/{model}: text generation ({messages} or {prompt}) or embeddings ({text}). */
export function run(call: Call): Result {
  const body = call.json;
  if (call.parseError || !isJsonObject(body)) {
    return errorResult(400, BAD_INPUT_CODE, "AiError: Bad input: request body is not valid JSON");
  }
  if (body.text !== undefined) return embed(call.model, body.text);
  let normalized: NormalizedMessage[];
  if (Array.isArray(body.messages) && body.messages.length > 0) normalized = normalizeMessages(body.messages);
  else if (typeof body.prompt === "string") normalized = [{ role: "user", text: body.prompt }];
  else return errorResult(400, BAD_INPUT_CODE, "AiError: Bad input: required properties 'prompt' or 'messages'");
  const completion = complete(normalized, call.model, body.max_tokens);
  const usage = usageOf(completion);
  let result: Result;
  if (body.stream === true) {
    const chunks = pieces(completion).map((response) => `data: ${JSON.stringify({ response })}\n\n`);
    chunks.push(`data: ${JSON.stringify({ response: "", usage })}\n\n`, "data: [DONE]\n\n");
    result = sseResult(chunks);
  } else {
    result = jsonResult(200, envelope({ response: completion.text, usage }));
  }
  result.usage = usage;
  return result;
}
