// Amazon Bedrock's Converse API behind AI Gateway:
// `aws-bedrock/bedrock-runtime/{region}/model/{modelId}/converse` (JSON) and `/converse-stream`
// (AWS's binary event stream, application/vnd.amazon.eventstream), authenticated by SigV4
// (bedrock-auth.ts) or a Bedrock API key.
//  * The request is checked as Converse checks it: `messages` non-empty, starting with a user
//    turn and alternating; content blocks text | image | document | toolUse | toolResult |
//    cachePoint | reasoningContent; toolUse/toolResult blocks need `toolConfig`; an unknown
//    top-level field is a ValidationException. Errors: the status, `{"message"}` and the name in
//    `x-amzn-ErrorType`.
//  * The answer follows the Anthropic rules (emulator.ts): words, or one toolUse to the forced
//    tool (toolChoice {tool: {name}}) or the first tool unless the last user turn holds
//    toolResult blocks; `inferenceConfig.maxTokens` caps it (stopReason max_tokens).
//  * Usage: inputTokens EXCLUDES the cache; cachePoint blocks (`ttl` 5m or 1h) mark prefixes as
//    Anthropic's cache_control does (anthropic-cache.ts), reported as cacheReadInputTokens,
//    cacheWriteInputTokens and cacheDetails [{ttl, inputTokens}].
//  * A stream: messageStart, a contentBlockStart for a toolUse, contentBlockDelta (text in word
//    pieces, tool input in JSON pieces), contentBlockStop, messageStop {stopReason}, metadata
//    {usage, metrics}; each payload carries Bedrock's padding field `p`. Each message is sent in
//    two chunks split mid-message (TCP splits frames anywhere), so a cut after an odd number of
//    chunks leaves half a message; a mid-stream fault sends a modelStreamErrorException message.

import { complete, normalizeMessages, promptTokens, toolsPromptTokens } from "../completion";
import { eventMessage, exceptionMessage } from "../eventstream";
import { isJsonObject, jsonResult, prop } from "../http";
import { randomBase62 } from "../ids";
import { type JsonAnswer, jsonPieces, type ToolDef, toolArguments } from "../reply";
import type { GenerateContext } from "../state";
import type { BufferedResult, Call, JsonObject, Result, StreamedResult } from "../types";
import { applyPromptCache, breakpoints, type CacheUsage } from "./anthropic-cache";
import { type AwsKeys, checkSignature } from "./bedrock-auth";

export const CONVERSE = /^bedrock-runtime\/([a-z0-9-]+)\/model\/([^/]+)\/(converse|converse-stream)$/;
const EVENT_STREAM = "application/vnd.amazon.eventstream";
const FIELDS = new Set([
  "messages",
  "system",
  "inferenceConfig",
  "toolConfig",
  "guardrailConfig",
  "additionalModelRequestFields",
  "additionalModelResponseFieldPaths",
  "promptVariables",
  "requestMetadata",
  "performanceConfig",
  "serviceTier",
  "outputConfig",
]);
const BLOCKS = new Set([
  "text",
  "image",
  "document",
  "video",
  "toolUse",
  "toolResult",
  "cachePoint",
  "reasoningContent",
  "guardContent",
]);
const ERROR_NAMESPACE = "http://internal.amazon.com/coral/com.amazon.bedrock/";

export function errorResult(status: number, type: string, message: string): BufferedResult {
  return jsonResult(status, { message }, { "x-amzn-errortype": `${type}:${ERROR_NAMESPACE}` });
}

const DEFAULTS: Readonly<Record<number, readonly [string, string]>> = {
  400: ["ValidationException", "Malformed input request, please reformat your input and try again."],
  403: ["AccessDeniedException", "You don't have access to the model with the specified model ID."],
  404: ["ResourceNotFoundException", "The requested resource could not be found."],
  408: ["ModelTimeoutException", "Model has timed out in processing the request. Try your request again."],
  424: ["ModelErrorException", "The model produced an error."],
  429: ["ThrottlingException", "Too many requests, please wait before trying again."],
  503: ["ServiceUnavailableException", "Bedrock is unable to process your request."],
};

export function defaultErrorResult(status: number): BufferedResult {
  const [type, message] = DEFAULTS[status] ?? ["InternalServerException", "The server encountered an internal error."];
  return errorResult(status, status >= 500 && status !== 503 ? "InternalServerException" : type, message);
}

export function keyErrorResult(): BufferedResult {
  return errorResult(403, "UnrecognizedClientException", "The security token included in the request is invalid.");
}

function invalid(message: string): BufferedResult {
  return errorResult(400, "ValidationException", message);
}

// ---- authentication

/** Whether the configured credential accepts this request: SigV4 for AWS keys, else a bearer API key. */
export function authenticate(call: Call, secret: string | undefined, region: string): BufferedResult | null {
  const header = call.headers.authorization;
  if (header === undefined)
    return errorResult(403, "MissingAuthenticationTokenException", "Missing Authentication Token");
  if (secret === undefined) return keyErrorResult();
  if (/^Bearer /i.test(header)) return header.slice(7).trim() === secret ? null : keyErrorResult();
  let keys: AwsKeys;
  try {
    keys = JSON.parse(secret) as AwsKeys;
  } catch {
    return keyErrorResult(); // the configured credential is an API key: a signature cannot match it
  }
  // the path as sent, after the gateway's `.../aws-bedrock/bedrock-runtime/{region}`
  const at = call.rawPath.indexOf(`/bedrock-runtime/${region}/`);
  const rawPath = call.rawPath.slice(at + `/bedrock-runtime/${region}`.length);
  const outcome = checkSignature(
    keys,
    {
      method: "POST",
      host: `bedrock-runtime.${region}.amazonaws.com`,
      rawPath,
      query: call.query.toString(),
      headers: call.headers,
      body: call.rawBody,
    },
    region,
  );
  return outcome.ok ? null : errorResult(403, outcome.type, outcome.message);
}

// ---- the request

type Answer =
  | { kind: "text"; text: string; words: string[]; tokens: number; stop: string }
  | { kind: "tool"; id: string; name: string; json: JsonAnswer };

/** Converse blocks in Anthropic's shape (what the token formula and the prompt cache read):
 * a cachePoint marks the block before it. */
function anthropicBlocks(blocks: readonly unknown[]): JsonObject[] {
  const out: JsonObject[] = [];
  for (const block of blocks) {
    const point = prop(block, "cachePoint");
    if (point !== undefined) {
      const last = out.at(-1);
      if (last) last.cache_control = { type: "ephemeral", ...(prop(point, "ttl") === "1h" ? { ttl: "1h" } : {}) };
      continue;
    }
    const text = prop(block, "text");
    const use = prop(block, "toolUse");
    const result = prop(block, "toolResult");
    if (typeof text === "string") out.push({ type: "text", text });
    else if (use !== undefined) out.push({ type: "tool_use", input: prop(use, "input") ?? {} });
    else if (result !== undefined) {
      const content = prop(result, "content");
      const parts = Array.isArray(content) ? content : [];
      const texts = parts.map((p) =>
        typeof prop(p, "text") === "string" ? prop(p, "text") : JSON.stringify(prop(p, "json") ?? ""),
      );
      out.push({ type: "tool_result", content: texts.join("") });
    } else out.push({ type: "other" });
  }
  return out;
}

function checkMessages(messages: unknown, hasTools: boolean): BufferedResult | null {
  if (!Array.isArray(messages) || messages.length === 0)
    return invalid(
      "A conversation must start with a user message. Try again with a conversation that starts with a user message.",
    );
  let expected = "user";
  for (const [i, m] of messages.entries()) {
    const role = prop(m, "role");
    if (role !== "user" && role !== "assistant")
      return invalid(
        `1 validation error detected: Value at 'messages.${i + 1}.member.role' failed to satisfy constraint: Member must satisfy enum value set: [user, assistant]`,
      );
    if (role !== expected)
      return invalid(
        "A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again.",
      );
    expected = role === "user" ? "assistant" : "user";
    const content = prop(m, "content");
    if (!Array.isArray(content) || content.length === 0)
      return invalid(
        `The content field in the Message object at messages.${i}.content is empty. Add a ContentBlock object to the content field and try again.`,
      );
    for (const block of content) {
      const keys = isJsonObject(block) ? Object.keys(block) : [];
      if (keys.length !== 1 || !BLOCKS.has(keys[0] ?? ""))
        return invalid(
          `The model returned the following errors: messages.${i}.content: each content block must have exactly one of ${[...BLOCKS].join(", ")}`,
        );
      if ((keys[0] === "toolUse" || keys[0] === "toolResult") && !hasTools) {
        return invalid("The toolConfig field must be defined when using toolUse and toolResult content blocks.");
      }
    }
  }
  return null;
}

function toolDefs(toolConfig: unknown): ToolDef[] {
  const tools = prop(toolConfig, "tools");
  const list: readonly unknown[] = Array.isArray(tools) ? tools : [];
  return list
    .map((t) => prop(t, "toolSpec"))
    .filter((spec) => spec !== undefined)
    .map((spec) => ({ name: String(prop(spec, "name") ?? ""), schema: prop(prop(spec, "inputSchema"), "json") }));
}

function answersToolResult(messages: readonly unknown[]): boolean {
  const last = messages.at(-1);
  const content = prop(last, "content");
  return Array.isArray(content) && content.some((b) => prop(b, "toolResult") !== undefined);
}

// ---- the answer

function usageOf(prompt: number, cache: CacheUsage, output: number): JsonObject {
  const input = prompt - cache.read - cache.creation;
  const details = [
    ...(cache.creation5m > 0 ? [{ ttl: "5m", inputTokens: cache.creation5m }] : []),
    ...(cache.creation1h > 0 ? [{ ttl: "1h", inputTokens: cache.creation1h }] : []),
  ];
  return {
    inputTokens: input,
    outputTokens: output,
    totalTokens: prompt + output,
    cacheReadInputTokens: cache.read,
    cacheWriteInputTokens: cache.creation,
    ...(details.length > 0 ? { cacheDetails: details } : {}),
  };
}

const padding = () => randomBase62(1 + Math.floor(Math.random() * 30));

/** The stream's messages, each split in two chunks mid-message (base64 of the bytes). */
function streamChunks(answer: Answer, usage: JsonObject): string[] {
  const events: Buffer[] = [eventMessage("messageStart", { p: padding(), role: "assistant" })];
  if (answer.kind === "tool") {
    const start = { toolUse: { toolUseId: answer.id, name: answer.name } };
    events.push(eventMessage("contentBlockStart", { contentBlockIndex: 0, p: padding(), start }));
    for (const piece of jsonPieces(answer.json.text)) {
      events.push(
        eventMessage("contentBlockDelta", { contentBlockIndex: 0, delta: { toolUse: { input: piece } }, p: padding() }),
      );
    }
  } else {
    for (const text of answer.words.map((w, i) => (i === 0 ? w : ` ${w}`))) {
      events.push(eventMessage("contentBlockDelta", { contentBlockIndex: 0, delta: { text }, p: padding() }));
    }
  }
  events.push(eventMessage("contentBlockStop", { contentBlockIndex: 0, p: padding() }));
  events.push(eventMessage("messageStop", { p: padding(), stopReason: stopReason(answer) }));
  events.push(eventMessage("metadata", { metrics: { latencyMs: 42 }, p: padding(), usage }));
  return events.flatMap((bytes) => {
    const mid = Math.floor(bytes.length / 2);
    return [bytes.subarray(0, mid).toString("base64"), bytes.subarray(mid).toString("base64")];
  });
}

function stopReason(answer: Answer): string {
  if (answer.kind === "text") return answer.stop;
  return answer.json.finishReason === "length" ? "max_tokens" : "tool_use";
}

export function converse(call: Call, ctx: GenerateContext, stream: boolean): Result {
  const body = call.json;
  if (call.parseError || !isJsonObject(body))
    return invalid("Malformed input request, please reformat your input and try again.");
  const unknown = Object.keys(body).find((key) => !FIELDS.has(key));
  if (unknown !== undefined)
    return invalid(
      `Malformed input request: extraneous key [${unknown}] is not permitted, please reformat your input and try again.`,
    );
  const tools = toolDefs(body.toolConfig);
  const problem = checkMessages(body.messages, tools.length > 0);
  if (problem) return problem;
  const messages = (body.messages as unknown[]).map((m) => ({
    role: prop(m, "role"),
    content: anthropicBlocks(prop(m, "content") as unknown[]),
  }));
  const system = Array.isArray(body.system) ? anthropicBlocks(body.system) : undefined;
  const normalized = normalizeMessages(messages, system);
  const model = call.model ?? "";
  const maxTokens = prop(body.inferenceConfig, "maxTokens");
  const forced = prop(prop(prop(body.toolConfig, "toolChoice"), "tool"), "name");
  let answer: Answer;
  if (tools.length > 0 && !answersToolResult(body.messages as unknown[])) {
    const tool = tools.find((t) => t.name === forced) ?? (tools[0] as ToolDef);
    answer = {
      kind: "tool",
      id: `tooluse_${randomBase62(22)}`,
      name: tool.name,
      json: toolArguments(tool, model, normalized, maxTokens),
    };
  } else {
    const done = complete(normalized, model, maxTokens);
    answer = {
      kind: "text",
      text: done.text,
      words: done.words,
      tokens: done.completionTokens,
      stop: done.finishReason === "length" ? "max_tokens" : "end_turn",
    };
  }
  const toolsJson = prop(body.toolConfig, "tools");
  const prompt = promptTokens(normalized) + toolsPromptTokens(toolsJson);
  const cacheTools = Array.isArray(toolsJson)
    ? anthropicBlocks(toolsJson.map((t) => (prop(t, "toolSpec") !== undefined ? { text: JSON.stringify(t) } : t)))
    : undefined;
  const cache = applyPromptCache(ctx.promptCache, breakpoints(ctx.gatewayId, model, cacheTools, system, messages));
  const output = answer.kind === "text" ? answer.tokens : answer.json.tokens;
  const usage = usageOf(prompt, cache, output);
  let result: Result;
  if (stream) {
    const chunks = streamChunks(answer, usage);
    const streamed: StreamedResult = {
      status: 200,
      headers: { "content-type": EVENT_STREAM, "x-amzn-bedrock-content-type": "application/json" },
      chunks,
      binary: true,
      failStream: () => [streamException()],
    };
    result = streamed;
  } else {
    const content =
      answer.kind === "text"
        ? [{ text: answer.text }]
        : [
            {
              toolUse: {
                toolUseId: answer.id,
                name: answer.name,
                input: answer.json.finishReason === "length" ? {} : answer.json.value,
              },
            },
          ];
    result = jsonResult(200, {
      output: { message: { role: "assistant", content } },
      stopReason: stopReason(answer),
      usage,
      metrics: { latencyMs: 42 },
    });
  }
  result.usage = { prompt_tokens: prompt, completion_tokens: output, total_tokens: prompt + output };
  return result;
}

/** A mid-stream failure as Bedrock sends it: an exception message (base64 of its bytes). */
export function streamException(): string {
  return exceptionMessage("modelStreamErrorException", "The model stream failed.").toString("base64");
}
