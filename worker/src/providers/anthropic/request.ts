// An OpenAI chat request → an Anthropic Messages request (cf-contract-2 §2.6): system and
// developer messages become `system` blocks, images become image sources, assistant tool calls
// become `tool_use` blocks and tool messages `tool_result` blocks, tools and tool_choice map to
// Anthropic's, `response_format` becomes one forced tool whose input is the JSON answer.
// What Anthropic cannot do (n > 1, logprobs) is a 400 naming the parameter, never dropped.

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
// Anthropic's thinking budgets for OpenAI's reasoning_effort (LiteLLM's constants).
const THINKING_BUDGET: Record<string, number> = { low: 1024, medium: 2048, high: 4096 };
/** Anthropic's least thinking budget: a max_tokens with room for thinking is above it. */
export const MIN_THINKING_BUDGET = 1024;

type Block = Json;

function withCache(block: Block, part: Json): Block {
  return part.cache_control ? { ...block, cache_control: part.cache_control } : block;
}

/** `data:image/png;base64,xxx` or an https URL → an Anthropic image (or PDF document) block. */
function imageBlock(url: string, where: string): Block {
  const data = /^data:([^;,]+);base64,(.*)$/s.exec(url);
  if (data) {
    const [, mediaType = "", payload = ""] = data;
    const type = mediaType === "application/pdf" ? "document" : "image";
    return { type, source: { type: "base64", media_type: mediaType, data: payload } };
  }
  if (/^https?:\/\//.test(url)) return { type: "image", source: { type: "url", url } };
  throw invalid(where, `'${where}' must be an https URL or a base64 data URL.`);
}

/** OpenAI content (a string or parts) → Anthropic blocks. */
function blocks(content: unknown, where: string): Block[] {
  if (content === null || content === undefined) return [];
  if (typeof content === "string") return content === "" ? [] : [{ type: "text", text: content }];
  if (!Array.isArray(content)) throw invalid(where, `'${where}' must be a string or an array of parts.`);
  return content.map((raw, i) => {
    const part = asObject(raw) ?? {};
    const at = `${where}[${i}]`;
    if (part.type === "text" && typeof part.text === "string")
      return withCache({ type: "text", text: part.text }, part);
    if (part.type === "image_url") {
      const image = asObject(part.image_url);
      const url = typeof part.image_url === "string" ? part.image_url : image?.url;
      if (typeof url !== "string") throw invalid(`${at}.image_url`, `'${at}.image_url.url' is required.`);
      return withCache(imageBlock(url, `${at}.image_url.url`), part);
    }
    throw invalid(`${at}.type`, `'${at}.type' ${JSON.stringify(part.type)} is not supported for Anthropic models.`);
  });
}

function text(content: unknown, where: string): Block[] {
  return blocks(content, where).filter((b) => b.type === "text");
}

function toolUse(raw: unknown, where: string): Block {
  const { id, name, input } = toolCallOf(raw, where);
  return { type: "tool_use", id, name, input };
}

const SPEAKER: Speaker<Block> = {
  system: text,
  user: blocks,
  assistant: (message, where) => assistantParts(message, where, text, toolUse),
  tool: (message, where) => [
    { type: "tool_result", tool_use_id: message.tool_call_id, content: text(message.content, `${where}.content`) },
  ],
};

function tools(body: Json): Block[] | undefined {
  return functionTools(body)?.map(({ name, description, parameters }) => ({
    name,
    ...(description ? { description } : {}),
    input_schema: parameters ?? { type: "object", properties: {} },
  }));
}

function toolChoice(choice: unknown, parallel: unknown): Block | undefined {
  let mapped: Block | undefined;
  if (choice === "auto") mapped = { type: "auto" };
  else if (choice === "required") mapped = { type: "any" };
  else if (choice === "none") mapped = { type: "none" };
  else if (asObject(choice)?.type === "function") {
    mapped = { type: "tool", name: asObject(asObject(choice)?.function)?.name };
  } else if (choice !== undefined && choice !== null) {
    throw invalid("tool_choice", "'tool_choice' must be auto, required, none or {type: 'function', function: {name}}.");
  }
  if (parallel === false) mapped = { ...(mapped ?? { type: "auto" }), disable_parallel_tool_use: true };
  return mapped;
}

/** `response_format` → the forced tool that carries the JSON answer (null: plain text). */
function jsonTool(format: unknown): Block | null {
  const f = asObject(format);
  if (!f || f.type === "text") return null;
  if (f.type === "json_object")
    return { name: JSON_TOOL, description: "Answer with a JSON object.", input_schema: { type: "object" } };
  if (f.type === "json_schema") {
    const spec = asObject(f.json_schema);
    const schema = asObject(spec?.schema);
    if (!schema)
      throw invalid("response_format.json_schema.schema", "'response_format.json_schema.schema' is required.");
    const description =
      typeof spec?.description === "string" ? spec.description : `Answer as ${String(spec?.name ?? "JSON")}.`;
    return { name: JSON_TOOL, description, input_schema: schema };
  }
  throw invalid("response_format.type", "'response_format.type' must be text, json_object or json_schema.");
}

/** Whether this call is answered through the JSON tool (its response and stream map back). */
export function wantsJson(call: ChatCall): boolean {
  return jsonTool(call.body.response_format) !== null;
}

export function messagesRequest(call: ChatCall): Json {
  const body = call.body as unknown as Json;
  if (typeof body.n === "number" && body.n > 1)
    throw invalid("n", "'n' greater than 1 is not supported for Anthropic models.");
  if (body.logprobs === true) throw invalid("logprobs", "'logprobs' is not supported for Anthropic models.");
  const { system, turns } = conversation(call.body.messages, SPEAKER);
  if (turns.length === 0) throw invalid("messages", "'messages' needs at least one user or assistant message.");
  const request: Json = {
    model: call.upstreamModel,
    max_tokens: call.body.max_completion_tokens ?? call.body.max_tokens ?? call.maxTokens,
    messages: turns,
  };
  if (system.length > 0) request.system = system;
  const userTools = tools(body);
  const json = jsonTool(body.response_format);
  if (json && userTools) {
    throw invalid("response_format", "'response_format' together with 'tools' is not supported for Anthropic models.");
  }
  if (userTools) request.tools = userTools;
  const choice = toolChoice(body.tool_choice, body.parallel_tool_calls);
  if (choice && userTools) request.tool_choice = choice;
  if (json) {
    request.tools = [json];
    request.tool_choice = { type: "tool", name: JSON_TOOL };
  }
  const stop = typeof body.stop === "string" ? [body.stop] : Array.isArray(body.stop) ? body.stop : [];
  const sequences = stop.filter((s): s is string => typeof s === "string" && s.trim() !== "");
  if (sequences.length > 0) request.stop_sequences = sequences;
  if (typeof body.temperature === "number") request.temperature = Math.min(1, Math.max(0, body.temperature)); // OpenAI allows up to 2
  if (typeof body.top_p === "number") request.top_p = body.top_p;
  if (typeof body.user === "string") request.metadata = { user_id: body.user };
  const budget = typeof body.reasoning_effort === "string" ? THINKING_BUDGET[body.reasoning_effort] : undefined;
  // Anthropic wants the budget below max_tokens: a cap lowered to fit a budget (budget/clamp.ts)
  // lowers it too, never below Anthropic's least (chat.ts keeps such a cap above it)
  const maxTokens = request.max_tokens as number;
  if (budget !== undefined) {
    const fitted = budget < maxTokens || maxTokens <= MIN_THINKING_BUDGET ? budget : maxTokens - 1;
    request.thinking = { type: "enabled", budget_tokens: fitted };
  }
  if (call.body.stream) request.stream = true;
  return request;
}
