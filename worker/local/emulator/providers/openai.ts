// OpenAI wire format: Embeddings and OpenAI's error shape (Chat Completions: openai-chat.ts).
// Also used for /compat (the gateway answers every provider in this shape) and for the
// OpenAI-compatible Workers AI routes.
import { embeddingDims, embeddingInputs, embeddingTokens, embeddingVector, vectorBase64 } from "../completion";
import { isJsonObject, jsonResult } from "../http";
import type { BufferedResult, Call, JsonObject, Result } from "../types";

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

export function parseErrorResult(): BufferedResult {
  return errorResult(
    400,
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly.)",
  );
}

// Every body field of the openai SDK's EmbeddingCreateParams (openai-python 3.63.0).
const KNOWN_EMBEDDING_FIELDS = new Set(["dimensions", "encoding_format", "input", "model", "user"]);

/** What OpenAI refuses in an embeddings body besides its input. */
function embeddingsProblem(body: JsonObject, model: string): BufferedResult | null {
  for (const key of Object.keys(body)) {
    if (!KNOWN_EMBEDDING_FIELDS.has(key)) {
      return errorResult(400, `Unrecognized request argument supplied: ${key}`, "invalid_request_error");
    }
  }
  const format = body.encoding_format;
  if (format !== undefined && format !== null && format !== "float" && format !== "base64") {
    return errorResult(
      400,
      `Invalid value: '${String(format)}'. Supported values are: 'float' and 'base64'.`,
      "invalid_request_error",
      "invalid_value",
      "encoding_format",
    );
  }
  const dimensions = body.dimensions;
  if (dimensions === undefined || dimensions === null) return null;
  if (typeof dimensions !== "number" || !Number.isInteger(dimensions)) {
    return errorResult(
      400,
      `Invalid type for 'dimensions': expected an integer, but got ${typeof dimensions === "number" ? "a decimal" : `a ${typeof dimensions}`} instead.`,
      "invalid_request_error",
      "invalid_type",
      "dimensions",
    );
  }
  if (!model.startsWith("text-embedding-3")) {
    return errorResult(400, "This model does not support specifying dimensions.", "invalid_request_error");
  }
  if (dimensions < 1) {
    return errorResult(
      400,
      `Invalid 'dimensions': integer below minimum value. Expected a value >= 1, but got ${dimensions} instead.`,
      "invalid_request_error",
      "integer_below_min_value",
      "dimensions",
    );
  }
  return null;
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
  if (call.provider === "openai") {
    const problem = embeddingsProblem(body, call.model ?? "");
    if (problem) return problem;
  }
  const base64 = body.encoding_format === "base64";
  let tokens = 0;
  const data = inputs.map((item, index) => {
    tokens += embeddingTokens(item);
    const vector = embeddingVector(call.model, item, embeddingDims(call.model, body.dimensions));
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
