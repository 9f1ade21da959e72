// Request bodies, validated by schema. valibot: 0.75 µs for a typical chat body and 4.6 KB in
// the bundle (zod: 0.55 µs but 454 KB with its locales; worker/bench/validators.mjs). A
// violation is a 400 in OpenAI's shape naming the parameter; unknown fields pass through.

import * as v from "valibot";
import { HttpError } from "./errors";
import { MAX_REQUEST_BYTES } from "./generated/settings";

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
// Ours, not OpenAI's: a conversation longer than this is not a chat (the body cap bounds bytes).
const MAX_MESSAGES = 10_000;

/** A number in [min, max] (OpenAI's documented ranges), or absent/null. */
function range(param: string, min: number, max: number) {
  const message = `'${param}' must be a number from ${min} to ${max}.`;
  return v.optional(
    v.nullable(v.pipe(v.number(message), v.finite(message), v.minValue(min, message), v.maxValue(max, message))),
  );
}

const string = (param: string) => v.string(`'${param}' must be a string.`);

// Content parts of OpenAI's chat messages, by type; unknown fields of a part pass through.
const textPart = v.looseObject({ type: v.literal("text"), text: string("text") });
const refusalPart = v.looseObject({ type: v.literal("refusal"), refusal: string("refusal") });
const userPart = v.variant(
  "type",
  [
    textPart,
    v.looseObject({ type: v.literal("image_url"), image_url: v.looseObject({ url: string("image_url.url") }) }),
    v.looseObject({
      type: v.literal("input_audio"),
      input_audio: v.looseObject({ data: string("input_audio.data"), format: string("input_audio.format") }),
    }),
    v.looseObject({ type: v.literal("file"), file: v.looseObject({}) }),
  ],
  "a content part's 'type' must be one of text, image_url, input_audio, file.",
);
const textContent = v.union([v.string(), v.array(textPart)], "'content' must be a string or an array of text parts.");
const toolCall = v.looseObject({
  id: string("id"),
  type: v.optional(v.string()),
  function: v.looseObject({ name: string("function.name"), arguments: string("function.arguments") }),
});

/** One chat message, by role, as OpenAI documents it. */
const message = v.variant(
  "role",
  [
    v.looseObject({ role: v.picklist(["system", "developer"]), content: textContent }),
    v.looseObject({
      role: v.literal("user"),
      content: v.union([v.string(), v.array(userPart)], "'content' must be a string or an array of content parts."),
    }),
    v.looseObject({
      // content may be absent or null: an assistant turn that only calls tools has none
      role: v.literal("assistant"),
      content: v.optional(
        v.nullable(
          v.union(
            [v.string(), v.array(v.variant("type", [textPart, refusalPart]))],
            "'content' must be a string, an array of text or refusal parts, or null.",
          ),
        ),
      ),
      tool_calls: v.optional(v.array(toolCall, "'tool_calls' must be an array.")),
    }),
    v.looseObject({ role: v.literal("tool"), content: textContent, tool_call_id: string("tool_call_id") }),
    v.looseObject({ role: v.literal("function"), content: v.nullable(v.string()), name: string("name") }),
  ],
  "a message's 'role' must be one of system, developer, user, assistant, tool, function.",
);

// OpenAI's rule for a function's name.
const FUNCTION_NAME = /^[a-zA-Z0-9_-]{1,64}$/;
const tool = v.variant(
  "type",
  [
    v.looseObject({
      type: v.literal("function"),
      function: v.looseObject({
        name: v.pipe(
          string("function.name"),
          v.regex(FUNCTION_NAME, "a function's 'name' must match ^[a-zA-Z0-9_-]{1,64}$."),
        ),
        description: v.optional(v.string()),
        parameters: v.optional(
          v.record(v.string(), v.unknown(), "a function's 'parameters' must be a JSON Schema object."),
        ),
      }),
    }),
    v.looseObject({ type: v.literal("custom"), custom: v.looseObject({ name: string("custom.name") }) }),
  ],
  "a tool's 'type' must be 'function' or 'custom'.",
);
const toolChoice = v.union(
  [
    v.picklist(["none", "auto", "required"]),
    v.looseObject({ type: v.literal("function"), function: v.looseObject({ name: v.string() }) }),
    v.looseObject({ type: v.picklist(["allowed_tools", "custom"]) }),
  ],
  "'tool_choice' must be 'none', 'auto', 'required' or a tool choice object.",
);
const responseFormat = v.variant(
  "type",
  [
    v.looseObject({ type: v.literal("text") }),
    v.looseObject({ type: v.literal("json_object") }),
    v.looseObject({ type: v.literal("json_schema"), json_schema: v.looseObject({ name: string("json_schema.name") }) }),
  ],
  "'response_format.type' must be 'text', 'json_object' or 'json_schema'.",
);
const stop = v.optional(
  v.nullable(
    v.union([v.string(), v.pipe(v.array(v.string()), v.maxLength(4))], "'stop' must be a string or up to 4 strings."),
  ),
);

export const chatBody = v.looseObject({
  model: v.optional(v.unknown()), // checked against the catalog by resolveModel
  messages: v.pipe(
    v.array(message, MESSAGES),
    v.minLength(1, MESSAGES),
    v.maxLength(MAX_MESSAGES, `'messages' may hold at most ${MAX_MESSAGES} messages.`),
  ),
  stream: v.optional(v.nullable(v.boolean("'stream' must be a boolean."))),
  stream_options: v.optional(
    v.nullable(v.looseObject({ include_usage: v.optional(v.boolean()) }, "'stream_options' must be an object.")),
  ),
  max_tokens: positiveInteger("max_tokens"),
  max_completion_tokens: positiveInteger("max_completion_tokens"),
  n: positiveInteger("n", MAX_CHOICES),
  temperature: range("temperature", 0, 2),
  top_p: range("top_p", 0, 1),
  presence_penalty: range("presence_penalty", -2, 2),
  frequency_penalty: range("frequency_penalty", -2, 2),
  top_logprobs: range("top_logprobs", 0, 20),
  logprobs: v.optional(v.nullable(v.boolean("'logprobs' must be a boolean."))),
  seed: v.optional(
    v.nullable(v.pipe(v.number("'seed' must be an integer."), v.safeInteger("'seed' must be an integer."))),
  ),
  stop,
  user: v.optional(string("user")),
  tools: v.optional(
    v.pipe(v.array(tool, "'tools' must be an array."), v.maxLength(128, "'tools' may hold at most 128 tools.")),
  ),
  tool_choice: v.optional(v.nullable(toolChoice)),
  parallel_tool_calls: v.optional(v.nullable(v.boolean("'parallel_tool_calls' must be a boolean."))),
  response_format: v.optional(v.nullable(responseFormat)),
});

export type ChatBody = v.InferOutput<typeof chatBody>;

const STREAM = v.optional(v.boolean("'stream' must be a boolean."));

/** OpenAI's Responses API: the parts the gateway must bound; the rest passes through. */
export const responsesBody = v.looseObject({
  model: v.optional(v.unknown()),
  input: v.optional(
    v.union(
      [
        v.string(),
        v.pipe(
          v.array(
            // an item: a message (role) or a typed item (function_call_output, reasoning, …)
            v.looseObject(
              {
                type: v.optional(v.string("an item's 'type' must be a string.")),
                role: v.optional(
                  v.picklist(
                    ["user", "assistant", "system", "developer"],
                    "an item's 'role' must be one of user, assistant, system, developer.",
                  ),
                ),
              },
              "each input item must be an object.",
            ),
          ),
          v.maxLength(MAX_MESSAGES, `'input' may hold at most ${MAX_MESSAGES} items.`),
        ),
      ],
      "'input' must be a string or an array of items.",
    ),
  ),
  temperature: range("temperature", 0, 2),
  top_p: range("top_p", 0, 1),
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

// Anthropic's content blocks, by type (the ones a request may carry; unknown fields pass).
const anthropicText = v.looseObject({ type: v.literal("text"), text: string("text") });
const anthropicBlock = v.variant(
  "type",
  [
    anthropicText,
    v.looseObject({ type: v.literal("image"), source: v.looseObject({ type: string("source.type") }) }),
    v.looseObject({ type: v.literal("document"), source: v.looseObject({ type: string("source.type") }) }),
    v.looseObject({
      type: v.literal("tool_use"),
      id: string("id"),
      name: string("name"),
      input: v.record(v.string(), v.unknown(), "a tool_use block's 'input' must be an object."),
    }),
    v.looseObject({ type: v.literal("tool_result"), tool_use_id: string("tool_use_id") }),
    v.looseObject({ type: v.literal("thinking"), thinking: string("thinking") }),
    v.looseObject({ type: v.literal("redacted_thinking"), data: string("data") }),
    v.looseObject({ type: v.literal("search_result") }),
    v.looseObject({ type: v.literal("server_tool_use") }),
    v.looseObject({ type: v.literal("web_search_tool_result") }),
    v.looseObject({ type: v.literal("container_upload") }),
  ],
  "a content block's 'type' must be one of text, image, document, tool_use, tool_result, thinking, " +
    "redacted_thinking, search_result, server_tool_use, web_search_tool_result, container_upload.",
);
const anthropicMessage = v.looseObject({
  role: v.picklist(["user", "assistant"], "a message's 'role' must be 'user' or 'assistant'."),
  content: v.union([v.string(), v.array(anthropicBlock)], "'content' must be a string or an array of content blocks."),
});
const anthropicMessages = v.pipe(
  v.array(anthropicMessage, MESSAGES),
  v.minLength(1, MESSAGES),
  v.maxLength(MAX_MESSAGES, `'messages' may hold at most ${MAX_MESSAGES} messages.`),
);
const anthropicSystem = v.optional(
  v.union([v.string(), v.array(anthropicText)], "'system' must be a string or an array of text blocks."),
);
const anthropicTools = v.optional(
  v.array(
    v.looseObject({ name: string("name"), input_schema: v.optional(v.record(v.string(), v.unknown())) }),
    "'tools' must be an array.",
  ),
);

/** Anthropic's Messages API, as documented: max_tokens is required there. */
export const messagesBody = v.looseObject({
  model: v.string("'model' is required and must be a string."),
  max_tokens: v.pipe(
    v.number("'max_tokens' is required and must be an integer."),
    v.safeInteger("'max_tokens' must be an integer."),
    v.minValue(1, "'max_tokens' must be at least 1."),
  ),
  messages: anthropicMessages,
  system: anthropicSystem,
  tools: anthropicTools,
  stream: STREAM,
  temperature: range("temperature", 0, 1),
  top_p: range("top_p", 0, 1),
  top_k: v.optional(
    v.pipe(
      v.number("'top_k' must be an integer."),
      v.safeInteger("'top_k' must be an integer."),
      v.minValue(0, "'top_k' must be at least 0."),
    ),
  ),
  stop_sequences: v.optional(v.array(v.string(), "'stop_sequences' must be an array of strings.")),
});
export type MessagesBody = v.InferOutput<typeof messagesBody>;

/** Anthropic's count_tokens: a Messages body without max_tokens. */
export const countTokensBody = v.looseObject({
  model: v.string("'model' is required and must be a string."),
  messages: anthropicMessages,
  system: anthropicSystem,
  tools: anthropicTools,
});

// What a missing required parameter is told (others: "'<param>' is required.").
const MISSING: Record<string, string> = {
  messages: MESSAGES,
  input: EMBEDDING_INPUT,
  model: "'model' is required and must be a string.",
  max_tokens: "'max_tokens' is required and must be an integer.",
};

function tooLarge(): HttpError {
  return new HttpError(413, `The request body is larger than this gateway accepts (${MAX_REQUEST_BYTES} bytes).`, {
    code: "request_too_large",
  });
}

/** The body's text, read no further than MAX_REQUEST_BYTES (a declared length above it: none). */
async function boundedText(request: Request): Promise<string> {
  const declared = Number(request.headers.get("content-length") ?? Number.NaN);
  if (declared > MAX_REQUEST_BYTES) throw tooLarge();
  if (request.body === null) return "";
  // a declared length the runtime holds the body to: read in one go (chunked bodies are counted)
  if (Number.isFinite(declared) && declared >= 0) return request.text();
  const reader = request.body.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_REQUEST_BYTES) {
      await reader.cancel().catch(() => {});
      throw tooLarge();
    }
    parts.push(value);
  }
  if (parts.length === 1) return decoder.decode(parts[0]);
  const all = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    all.set(part, at);
    at += part.byteLength;
  }
  return decoder.decode(all);
}

const decoder = new TextDecoder();

export async function readJsonBody(
  request: Request,
  onText?: (text: string) => void,
): Promise<Record<string, unknown>> {
  const text = await boundedText(request);
  onText?.(text);
  let body: unknown;
  try {
    body = JSON.parse(text);
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

/**
 * A union's issue stands for its branches' issues: name the one that got furthest into the
 * value (`messages[0].content[0].text`, not `messages[0].content`).
 */
function deepest(issue: v.BaseIssue<unknown>): v.BaseIssue<unknown> {
  let best = issue;
  for (const sub of issue.issues ?? []) {
    const inner = deepest(sub);
    // a branch's path is relative to the union's
    const path = [...(issue.path ?? []), ...(inner.path ?? [])] as v.BaseIssue<unknown>["path"];
    if ((path?.length ?? 0) > (best.path?.length ?? 0)) best = { ...inner, path };
  }
  return best;
}

/** The body as `schema` says, or a 400 naming the first parameter that is wrong. */
export function validate<const T extends v.GenericSchema>(schema: T, body: unknown): v.InferOutput<T> {
  const result = v.safeParse(schema, body, { abortEarly: true });
  if (result.success) return result.output;
  const issue = deepest(result.issues[0]);
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
