// Request bodies, validated by schema. valibot: 0.75 µs for a typical chat body and 4.6 KB in
// the bundle (zod: 0.55 µs but 454 KB with its locales; worker/bench/validators.mjs). A
// violation is a 400 in OpenAI's shape naming the parameter; unknown fields pass through.

import * as v from "valibot";
import { HttpError } from "./errors";

// OpenAI's own limit on `n`.
const MAX_CHOICES = 128;

// A safe integer: 1e308 is an integer too, and would make the worst case Infinity.
function positiveInteger(param: string, max = Number.MAX_SAFE_INTEGER) {
  const message = `'${param}' must be an integer from 1 to ${max}.`;
  return v.optional(
    v.nullable(v.pipe(v.number(message), v.safeInteger(message), v.minValue(1, message), v.maxValue(max, message))),
  );
}

const MESSAGES = "'messages' is required and must be a non-empty array.";

export const chatBody = v.looseObject({
  model: v.optional(v.unknown()), // checked against the catalog by resolveModel
  messages: v.pipe(
    // content may be absent: an assistant turn that only calls tools has none
    v.array(v.looseObject({ role: v.unknown(), content: v.optional(v.unknown()) }), MESSAGES),
    v.minLength(1, MESSAGES),
  ),
  stream: v.optional(v.boolean("'stream' must be a boolean.")),
  stream_options: v.optional(
    v.nullable(v.looseObject({ include_usage: v.optional(v.boolean()) }, "'stream_options' must be an object.")),
  ),
  max_tokens: positiveInteger("max_tokens"),
  max_completion_tokens: positiveInteger("max_completion_tokens"),
  n: positiveInteger("n", MAX_CHOICES),
  tools: v.optional(v.unknown()),
  response_format: v.optional(v.unknown()),
});

export type ChatBody = v.InferOutput<typeof chatBody>;

const STREAM = v.optional(v.boolean("'stream' must be a boolean."));

/** OpenAI's Responses API: the parts the gateway must bound; the rest passes through. */
export const responsesBody = v.looseObject({
  model: v.optional(v.unknown()),
  input: v.optional(v.union([v.string(), v.array(v.unknown())], "'input' must be a string or an array of items.")),
  instructions: v.optional(v.nullable(v.string("'instructions' must be a string."))),
  max_output_tokens: positiveInteger("max_output_tokens"),
  stream: STREAM,
  tools: v.optional(v.array(v.unknown(), "'tools' must be an array.")),
  previous_response_id: v.optional(v.nullable(v.string("'previous_response_id' must be a string."))),
  conversation: v.optional(v.unknown()),
});
export type ResponsesBody = v.InferOutput<typeof responsesBody>;

const EMBEDDING_INPUT = "'input' must be a non-empty string, an array of strings, or of token arrays.";
const tokenArray = v.pipe(v.array(v.pipe(v.number(), v.safeInteger(), v.minValue(0))), v.minLength(1));
/** OpenAI's embeddings: a string, strings, tokens, or token arrays (at most 2,048 inputs). */
export const embeddingsBody = v.looseObject({
  model: v.optional(v.unknown()),
  input: v.union(
    [
      v.pipe(v.string(), v.minLength(1)),
      v.pipe(v.array(v.pipe(v.string(), v.minLength(1))), v.minLength(1), v.maxLength(2048)),
      tokenArray,
      v.pipe(v.array(tokenArray), v.minLength(1), v.maxLength(2048)),
    ],
    EMBEDDING_INPUT,
  ),
  encoding_format: v.optional(v.picklist(["float", "base64"], "'encoding_format' must be 'float' or 'base64'.")),
  dimensions: positiveInteger("dimensions"),
});
export type EmbeddingsBody = v.InferOutput<typeof embeddingsBody>;

/** Anthropic's Messages API: model, max_tokens (required by Anthropic) and messages. */
export const messagesBody = v.looseObject({
  model: v.string("'model' is required and must be a string."),
  max_tokens: v.pipe(
    v.number("'max_tokens' is required and must be an integer."),
    v.safeInteger("'max_tokens' must be an integer."),
    v.minValue(1, "'max_tokens' must be at least 1."),
  ),
  messages: v.pipe(v.array(v.unknown(), MESSAGES), v.minLength(1, MESSAGES)),
  system: v.optional(v.unknown()),
  tools: v.optional(v.array(v.unknown(), "'tools' must be an array.")),
  stream: STREAM,
});
export type MessagesBody = v.InferOutput<typeof messagesBody>;

/** Anthropic's count_tokens: a Messages body without max_tokens. */
export const countTokensBody = v.looseObject({
  model: v.string("'model' is required and must be a string."),
  messages: v.pipe(v.array(v.unknown(), MESSAGES), v.minLength(1, MESSAGES)),
});

// What a missing required parameter is told (others: "'<param>' is required.").
const MISSING: Record<string, string> = {
  messages: MESSAGES,
  input: EMBEDDING_INPUT,
  model: "'model' is required and must be a string.",
  max_tokens: "'max_tokens' is required and must be an integer.",
};

export async function readJsonBody(request: Request): Promise<Record<string, unknown>> {
  let body: unknown;
  try {
    body = await request.json();
  } catch {
    throw new HttpError(400, "We could not parse the JSON body of your request.", { code: "invalid_json" });
  }
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw new HttpError(400, "The request body must be a JSON object.", { code: "invalid_json" });
  }
  return body as Record<string, unknown>;
}

/** `messages[2].content` for an issue's path. */
function paramOf(path: readonly { key: unknown }[]): string {
  return path
    .map(({ key }, i) => (typeof key === "number" ? `[${key}]` : i ? `.${String(key)}` : String(key)))
    .join("");
}

/** The body as `schema` says, or a 400 naming the first parameter that is wrong. */
export function validate<const T extends v.GenericSchema>(schema: T, body: unknown): v.InferOutput<T> {
  const result = v.safeParse(schema, body, { abortEarly: true });
  if (result.success) return result.output;
  const issue = result.issues[0];
  const path = issue.path ?? [];
  const param = paramOf(path);
  const missing = issue.input === undefined && path.length > 0;
  if (missing) {
    throw new HttpError(400, MISSING[param] ?? `'${param}' is required.`, {
      param,
      code: "missing_required_parameter",
    });
  }
  const top = path.length <= 1;
  throw new HttpError(400, top ? issue.message : `'${param}' is invalid: ${issue.message}`, {
    param: param || null,
    code: top && Object.hasOwn(MISSING, param) ? "missing_required_parameter" : "invalid_type",
  });
}
