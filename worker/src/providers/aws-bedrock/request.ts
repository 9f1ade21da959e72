// An OpenAI chat request → a Bedrock Converse request: system and developer messages become
// `system` blocks, user and assistant turns `messages` (same-role turns merged, as Converse
// requires alternation), images `image` blocks (bytes: Converse takes no URL), assistant tool
// calls `toolUse` blocks and tool messages `toolResult` blocks, tools `toolConfig.tools` with
// `toolSpec`, `response_format` one forced tool whose input is the JSON answer (what Converse
// offers every model), the output cap, sampling and stop sequences `inferenceConfig`. A part's
// `cache_control` (as Anthropic's) is a `cachePoint` after it, its ttl kept. What Converse cannot
// do (n > 1, logprobs, tool_choice none, an image URL) is a 400 naming the parameter.

import {
  asObject,
  assistantParts,
  conversation,
  functionTools,
  invalid,
  type Json,
  type Speaker,
  toolCallOf,
} from "../chat-request";
import type { ChatCall } from "../types";

/** The tool a structured-output request is answered through (its input is the JSON answer). */
export const JSON_TOOL = "json_response";
const IMAGE_FORMATS: Record<string, string> = {
  "image/png": "png",
  "image/jpeg": "jpeg",
  "image/gif": "gif",
  "image/webp": "webp",
};

type Block = Json;

/** A cachePoint after a part marked for caching (`cache_control: {type: "ephemeral"[, ttl]}`). */
function cachePoint(part: Json): Block[] {
  const control = asObject(part.cache_control);
  if (!control) return [];
  const ttl = control.ttl;
  if (ttl !== undefined && ttl !== "5m" && ttl !== "1h") {
    throw invalid("cache_control.ttl", "'cache_control.ttl' must be 5m or 1h.");
  }
  return [{ cachePoint: { type: "default", ...(ttl ? { ttl } : {}) } }];
}

function image(url: string, where: string): Block {
  const data = /^data:([^;,]+);base64,(.*)$/s.exec(url);
  const format = data ? IMAGE_FORMATS[data[1] ?? ""] : undefined;
  if (!data || !format) {
    throw invalid(where, `'${where}' must be a base64 data URL of a PNG, JPEG, GIF or WebP image for Bedrock models.`);
  }
  return { image: { format, source: { bytes: data[2] ?? "" } } };
}

/** OpenAI content (a string or parts) → Converse blocks. */
function blocks(content: unknown, where: string): Block[] {
  if (content === null || content === undefined) return [];
  if (typeof content === "string") return content === "" ? [] : [{ text: content }];
  if (!Array.isArray(content)) throw invalid(where, `'${where}' must be a string or an array of parts.`);
  return content.flatMap((raw, i) => {
    const part = asObject(raw) ?? {};
    const at = `${where}[${i}]`;
    if (part.type === "text" && typeof part.text === "string") return [{ text: part.text }, ...cachePoint(part)];
    if (part.type === "image_url") {
      const url = typeof part.image_url === "string" ? part.image_url : asObject(part.image_url)?.url;
      if (typeof url !== "string") throw invalid(`${at}.image_url`, `'${at}.image_url.url' is required.`);
      return [image(url, `${at}.image_url.url`), ...cachePoint(part)];
    }
    throw invalid(`${at}.type`, `'${at}.type' ${JSON.stringify(part.type)} is not supported for Bedrock models.`);
  });
}

function texts(content: unknown, where: string): Block[] {
  return blocks(content, where).filter((b) => typeof b.text === "string" || b.cachePoint !== undefined);
}

function toolUse(raw: unknown, where: string): Block {
  const { id, name, input } = toolCallOf(raw, where);
  if (typeof id !== "string" || typeof name !== "string") {
    throw invalid(where, `'${where}' needs an id and a function name.`);
  }
  return { toolUse: { toolUseId: id, name, input: asObject(input) ?? { value: input } } };
}

/** A tool message's content → the result: a JSON object as json, else its text. */
function toolResult(id: string, content: unknown, where: string): Block {
  const text = texts(content, where)
    .map((b) => (typeof b.text === "string" ? b.text : ""))
    .join("");
  let result: Block = { text };
  try {
    const value = asObject(JSON.parse(text));
    if (value) result = { json: value };
  } catch {
    // plain text
  }
  return { toolResult: { toolUseId: id, content: [result] } };
}

const SPEAKER: Speaker<Block> = {
  system: texts,
  user: blocks,
  assistant: (message, where) => assistantParts(message, where, texts, toolUse),
  tool: (message, where) => [toolResult(message.tool_call_id, message.content, `${where}.content`)],
};

function toolSpecs(body: Json): Block[] {
  return (functionTools(body) ?? []).map(({ name, description, parameters }) => ({
    toolSpec: {
      name,
      ...(description ? { description } : {}),
      inputSchema: { json: parameters ?? { type: "object", properties: {} } },
    },
  }));
}

function toolChoice(choice: unknown): Block | undefined {
  if (choice === undefined || choice === null || choice === "auto") return choice === "auto" ? { auto: {} } : undefined;
  if (choice === "required") return { any: {} };
  const name = asObject(asObject(choice)?.function)?.name;
  if (asObject(choice)?.type === "function" && typeof name === "string") return { tool: { name } };
  if (choice === "none") {
    throw invalid("tool_choice", "'tool_choice' none is not supported for Bedrock models: leave the tools out.");
  }
  throw invalid("tool_choice", "'tool_choice' must be auto, required or {type: 'function', function: {name}}.");
}

/** `response_format` → the one tool the JSON answer comes through (null: plain text). */
function jsonTool(format: unknown): Block | null {
  const f = asObject(format);
  if (!f || f.type === "text") return null;
  let schema: Json = { type: "object" };
  if (f.type === "json_schema") {
    const given = asObject(asObject(f.json_schema)?.schema);
    if (!given) {
      throw invalid("response_format.json_schema.schema", "'response_format.json_schema.schema' is required.");
    }
    schema = given;
  } else if (f.type !== "json_object") {
    throw invalid("response_format.type", "'response_format.type' must be text, json_object or json_schema.");
  }
  return { toolSpec: { name: JSON_TOOL, description: "Answer with this JSON.", inputSchema: { json: schema } } };
}

/** Whether a request's answer comes as JSON through the answer tool. */
export function answersInJson(call: ChatCall): boolean {
  return jsonTool((call.body as unknown as Json).response_format) !== null;
}

export function converseRequest(call: ChatCall): Json {
  const body = call.body as unknown as Json;
  if (typeof body.n === "number" && body.n > 1)
    throw invalid("n", "'n' greater than 1 is not supported for Bedrock models.");
  if (body.logprobs === true) throw invalid("logprobs", "'logprobs' is not supported for Bedrock models.");
  const { system, turns } = conversation(call.body.messages, SPEAKER);
  if (turns.length === 0) throw invalid("messages", "'messages' needs at least one user or assistant message.");
  const inference: Json = { maxTokens: call.body.max_completion_tokens ?? call.body.max_tokens ?? call.maxTokens };
  if (typeof body.temperature === "number") inference.temperature = body.temperature;
  if (typeof body.top_p === "number") inference.topP = body.top_p;
  const stop = typeof body.stop === "string" ? [body.stop] : Array.isArray(body.stop) ? body.stop : [];
  const sequences = stop.filter((s): s is string => typeof s === "string" && s !== "");
  if (sequences.length > 0) inference.stopSequences = sequences;
  const request: Json = { messages: turns, inferenceConfig: inference };
  if (system.length > 0) request.system = system;
  const answerTool = jsonTool(body.response_format);
  if (answerTool) {
    request.toolConfig = { tools: [answerTool], toolChoice: { tool: { name: JSON_TOOL } } };
    return request;
  }
  const specs = toolSpecs(body);
  const choice = toolChoice(body.tool_choice);
  if (specs.length > 0) request.toolConfig = { tools: specs, ...(choice ? { toolChoice: choice } : {}) };
  return request;
}
