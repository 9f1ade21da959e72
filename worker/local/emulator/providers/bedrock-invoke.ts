// Claude on Bedrock in Anthropic's format: InvokeModel (`/model/{id}/invoke`), its stream
// (`/invoke-with-response-stream`) and CountTokens (`/model/{id}/count-tokens`).
//  * The body is Anthropic's Messages body without `model` and `stream`, with
//    `anthropic_version: "bedrock-2023-05-31"` (required; another value is a
//    ValidationException) and betas as an `anthropic_beta` list. It is answered by the Anthropic
//    emulator's rules (anthropic.ts) for the Claude model the id names
//    (`us.anthropic.claude-haiku-4-5-20251001-v1:0` → `claude-haiku-4-5-20251001`).
//  * The answer is Anthropic's message as it is; a refusal Anthropic would answer with a 400 is
//    Bedrock's ValidationException with the same words.
//  * The stream is AWS's event stream: one `chunk` message per Anthropic event, the event's JSON
//    base64 in `bytes` (plus Bedrock's padding `p`), message_stop carrying
//    `amazon-bedrock-invocationMetrics`; each message sent in two chunks split mid-message.
//  * CountTokens takes `{input: {invokeModel: {body: <base64 of the invoke body>}}}` and answers
//    `{inputTokens}`.

import { eventMessage, exceptionMessage } from "../eventstream";
import { isJsonObject, jsonResult, prop } from "../http";
import type { GenerateContext } from "../state";
import type { Call, JsonObject, Result } from "../types";
import * as anthropic from "./anthropic";
import { errorResult } from "./bedrock";

export const INVOKE =
  /^bedrock-runtime\/([a-z0-9-]+)\/model\/([^/]+)\/(invoke|invoke-with-response-stream|count-tokens)$/;
const VERSION = "bedrock-2023-05-31";
const EVENT_STREAM = "application/vnd.amazon.eventstream";

/** The Claude model a Bedrock id names. */
export function claudeName(modelId: string): string {
  return modelId.replace(/^([a-z]+\.)?anthropic\./, "").replace(/-v\d+(:\d+)?$/, "");
}

/** The invoke body as the Anthropic emulator takes it (its model, its headers), or a refusal. */
function asAnthropic(call: Call, body: unknown, stream: boolean): Call | Result {
  if (!isJsonObject(body))
    return errorResult(
      400,
      "ValidationException",
      "Malformed input request, please reformat your input and try again.",
    );
  const { anthropic_version: version, anthropic_beta: betas, ...rest } = body;
  if (version !== VERSION) {
    return errorResult(
      400,
      "ValidationException",
      `Malformed input request: #: required key [anthropic_version] not found or not '${VERSION}'`,
    );
  }
  if ("model" in rest || "stream" in rest) {
    const key = "model" in rest ? "model" : "stream";
    return errorResult(
      400,
      "ValidationException",
      `Malformed input request: #: extraneous key [${key}] is not permitted, please reformat your input and try again.`,
    );
  }
  const beta = Array.isArray(betas) ? betas.filter((b): b is string => typeof b === "string") : [];
  const headers = {
    ...call.headers,
    "anthropic-version": "2023-06-01",
    ...(beta.length > 0 ? { "anthropic-beta": beta.join(",") } : {}),
  };
  const model = claudeName(call.model ?? "");
  return { ...call, headers, json: { ...rest, model, ...(stream ? { stream: true } : {}) }, model, stream };
}

/** An Anthropic refusal as Bedrock words it. */
function asBedrockError(result: Result): Result {
  const message = String(prop(prop(JSON.parse(result.body ?? "{}"), "error"), "message") ?? "The request failed.");
  if (result.status === 400) return errorResult(400, "ValidationException", message);
  if (result.status === 429) return errorResult(429, "ThrottlingException", message);
  return errorResult(Math.min(result.status, 500), "InternalServerException", message);
}

const padding = () =>
  "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0".slice(0, 1 + Math.floor(Math.random() * 30));

/** Anthropic's SSE chunks → Bedrock's `chunk` messages, each split in two (base64). */
function streamChunks(sse: readonly string[], usage: Result["usage"]): string[] {
  const events: JsonObject[] = [];
  for (const chunk of sse) {
    for (const line of chunk.split("\n")) {
      if (!line.startsWith("data: ")) continue;
      const event = JSON.parse(line.slice(6)) as JsonObject;
      if (event.type === "message_stop" && usage) {
        event["amazon-bedrock-invocationMetrics"] = {
          inputTokenCount: usage.prompt_tokens,
          outputTokenCount: usage.completion_tokens,
          invocationLatency: 420,
          firstByteLatency: 42,
        };
      }
      events.push(event);
    }
  }
  return events.flatMap((event) => {
    const bytes = eventMessage("chunk", { bytes: Buffer.from(JSON.stringify(event)).toString("base64"), p: padding() });
    const mid = Math.floor(bytes.length / 2);
    return [bytes.subarray(0, mid).toString("base64"), bytes.subarray(mid).toString("base64")];
  });
}

export function invoke(call: Call, ctx: GenerateContext, method: string): Result {
  if (call.parseError)
    return errorResult(
      400,
      "ValidationException",
      "Malformed input request, please reformat your input and try again.",
    );
  if (method === "count-tokens") {
    const encoded = prop(prop(prop(call.json, "input"), "invokeModel"), "body");
    if (typeof encoded !== "string")
      return errorResult(400, "ValidationException", "input.invokeModel.body is required.");
    let body: unknown;
    try {
      body = JSON.parse(Buffer.from(encoded, "base64").toString("utf8"));
    } catch {
      return errorResult(400, "ValidationException", "The provided input body is not valid JSON.");
    }
    const counted = asAnthropic(call, body, false);
    if ("status" in counted) return counted;
    const result = anthropic.countTokens(counted);
    if (result.status !== 200) return asBedrockError(result);
    const result2 = jsonResult(200, { inputTokens: prop(JSON.parse(result.body ?? "{}"), "input_tokens") });
    result2.usage = null;
    return result2;
  }
  const stream = method === "invoke-with-response-stream";
  const asked = asAnthropic(call, call.json, stream);
  if ("status" in asked) return asked;
  const result = anthropic.messages(asked, ctx);
  if (result.status !== 200) return asBedrockError(result);
  if (result.chunks === undefined)
    return {
      ...result,
      headers: { ...result.headers, "x-amzn-bedrock-input-token-count": String(result.usage?.prompt_tokens ?? 0) },
    };
  return {
    status: 200,
    headers: { "content-type": EVENT_STREAM, "x-amzn-bedrock-content-type": "application/json" },
    chunks: streamChunks(result.chunks, result.usage),
    binary: true,
    usage: result.usage ?? null,
    failStream: () => [exceptionMessage("modelStreamErrorException", "The model stream failed.").toString("base64")],
  };
}
