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

// What a missing required parameter is told (others: "'<param>' is required.").
const MISSING: Record<string, string> = { messages: MESSAGES };

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
