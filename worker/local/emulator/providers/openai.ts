// OpenAI wire format: Chat Completions (buffered and SSE), Embeddings, and OpenAI's error shape.
// Also used for /compat (the gateway answers every provider in this shape) and for the
// OpenAI-compatible Workers AI routes.
import {
  type Completion,
  complete,
  embeddingInputs,
  embeddingTokens,
  embeddingVector,
  normalizeMessages,
  pieces,
  vectorBase64,
} from "../completion";
import { isJsonObject, jsonResult, prop, sseResult } from "../http";
import { randomId } from "../ids";
import type { BufferedResult, Call, Result, Usage } from "../types";

/** Usage as chat completions report it, with the detail objects OpenAI always sends. */
interface ChatUsage extends Usage {
  prompt_tokens_details: { cached_tokens: number };
  completion_tokens_details: { reasoning_tokens: number };
}

interface ChunkChoice {
  index: number;
  delta: { role?: "assistant"; content?: string };
  logprobs: null;
  finish_reason: string | null;
}

interface ChatChunk {
  id: string;
  object: "chat.completion.chunk";
  created: number;
  model: string | null;
  system_fingerprint: string;
  choices: ChunkChoice[];
  usage?: ChatUsage | null;
}

const FINGERPRINT = "fp_emulator";
const KEY_ERROR = "Incorrect API key provided.";
// status -> [message, type, code]
const DEFAULT_MESSAGES: Readonly<Record<number, readonly [string, string, string | null]>> = {
  400: ["Bad request.", "invalid_request_error", null],
  401: [KEY_ERROR, "invalid_request_error", "invalid_api_key"],
  403: ["You are not allowed to sample from this model.", "invalid_request_error", null],
  404: ["The model does not exist or you do not have access to it.", "invalid_request_error", "model_not_found"],
  // OpenAI itself says type "requests"/"tokens"; the brief asked for this type, and `code` matches OpenAI.
  429: ["Rate limit reached for requests.", "rate_limit_exceeded", "rate_limit_exceeded"],
  503: ["The engine is currently overloaded, please try again later.", "server_error", null],
};

export function errorResult(
  status: number,
  message: string,
  type = "invalid_request_error",
  code: string | null = null,
  param: string | null = null,
): BufferedResult {
  return jsonResult(status, { error: { message, type, param, code } });
}

/** OpenAI's own error body for a status, used for faults that give no body. */
export function defaultErrorResult(status: number): BufferedResult {
  const known = DEFAULT_MESSAGES[status];
  if (known) return errorResult(status, ...known);
  if (status >= 500) {
    return errorResult(
      status,
      "The server had an error while processing your request. Sorry about that!",
      "server_error",
    );
  }
  return errorResult(status, `Request failed with status ${status}.`, "invalid_request_error");
}

export function keyErrorResult(): BufferedResult {
  return errorResult(401, KEY_ERROR, "invalid_request_error", "invalid_api_key");
}

function parseErrorResult(): BufferedResult {
  return errorResult(
    400,
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly.)",
  );
}

function usageOf(completion: Completion): Usage {
  return {
    prompt_tokens: completion.promptTokens,
    completion_tokens: completion.completionTokens,
    total_tokens: completion.promptTokens + completion.completionTokens,
  };
}

function chatUsage(completion: Completion): ChatUsage {
  return {
    ...usageOf(completion),
    prompt_tokens_details: { cached_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: 0 },
  };
}

function chatBody(id: string, created: number, model: string | null, completion: Completion) {
  return {
    id,
    object: "chat.completion",
    created,
    model,
    system_fingerprint: FINGERPRINT,
    choices: [
      {
        index: 0,
        message: { role: "assistant", content: completion.text, refusal: null },
        logprobs: null,
        finish_reason: completion.finishReason,
      },
    ],
    usage: chatUsage(completion),
  };
}

function chatChunks(
  id: string,
  created: number,
  model: string | null,
  completion: Completion,
  includeUsage: boolean,
): string[] {
  const head = { id, object: "chat.completion.chunk" as const, created, model, system_fingerprint: FINGERPRINT };
  const event = (choices: ChunkChoice[], usage: ChatUsage | null) => {
    const chunk: ChatChunk = { ...head, choices };
    if (includeUsage) chunk.usage = usage;
    return `data: ${JSON.stringify(chunk)}\n\n`;
  };
  const choice = (delta: ChunkChoice["delta"], finish: string | null): ChunkChoice[] => [
    { index: 0, delta, logprobs: null, finish_reason: finish },
  ];
  const out = [event(choice({ role: "assistant", content: "" }, null), null)];
  for (const piece of pieces(completion)) out.push(event(choice({ content: piece }, null), null));
  out.push(event(choice({}, completion.finishReason), null));
  if (includeUsage) out.push(event([], chatUsage(completion)));
  out.push("data: [DONE]\n\n");
  return out;
}

/** POST chat/completions. `call.model` is the model to report (no provider prefix). */
export function chat(call: Call): Result {
  const body = call.json;
  if (call.parseError || !isJsonObject(body)) return parseErrorResult();
  if (typeof body.model !== "string" || body.model === "") {
    return errorResult(400, "you must provide a model parameter", "invalid_request_error", null, "model");
  }
  if (!Array.isArray(body.messages)) {
    return errorResult(
      400,
      "Missing required parameter: 'messages'.",
      "invalid_request_error",
      "missing_required_parameter",
      "messages",
    );
  }
  if (body.messages.length === 0) {
    return errorResult(
      400,
      "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
      "invalid_request_error",
      "empty_array",
      "messages",
    );
  }
  const maxTokens = body.max_completion_tokens ?? body.max_tokens;
  const completion = complete(normalizeMessages(body.messages), call.model, maxTokens);
  const id = `chatcmpl-${randomId(29)}`;
  const created = Math.floor(Date.now() / 1000);
  const includeUsage = prop(body.stream_options, "include_usage") === true;
  const result: Result =
    body.stream === true
      ? sseResult(chatChunks(id, created, call.model, completion, includeUsage))
      : jsonResult(200, chatBody(id, created, call.model, completion));
  result.usage = usageOf(completion);
  return result;
}

/** POST embeddings, float or base64 encoding. */
export function embeddings(call: Call): Result {
  const body = call.json;
  if (call.parseError || !isJsonObject(body)) return parseErrorResult();
  if (typeof body.model !== "string" || body.model === "") {
    return errorResult(400, "you must provide a model parameter", "invalid_request_error", null, "model");
  }
  const inputs = embeddingInputs(body.input);
  if (inputs === null) {
    return errorResult(
      400,
      "'input' must be a non-empty string, array of strings or array of token arrays.",
      "invalid_request_error",
      null,
      "input",
    );
  }
  const base64 = body.encoding_format === "base64";
  let tokens = 0;
  const data = inputs.map((item, index) => {
    tokens += embeddingTokens(item);
    const vector = embeddingVector(call.model, item);
    return { object: "embedding", embedding: base64 ? vectorBase64(vector) : vector, index };
  });
  const result = jsonResult(200, {
    object: "list",
    data,
    model: call.model,
    usage: { prompt_tokens: tokens, total_tokens: tokens },
  });
  result.usage = { prompt_tokens: tokens, completion_tokens: 0, total_tokens: tokens };
  return result;
}
