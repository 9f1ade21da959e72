// OpenAI Chat Completions wire format (buffered and SSE), for every OpenAI-wire chat route:
// /openai, /compat, /workers-ai/v1 and the OpenAI-compatible providers (groq, mistral, ...).
// Three kinds of answer: the fake model's words, a tool call (tools given, tool_choice not
// "none", last message not a tool result) or a JSON content (response_format json_schema /
// json_object). Stream shapes follow cf-contract-2 4.1 / 4.2.
import {
  autoTool,
  type Completion,
  complete,
  normalizeMessages,
  pieces,
  promptTokens,
  toolsPromptTokens,
} from "../completion";
import { isJsonObject, jsonResult, prop, sseResult } from "../http";
import { randomId } from "../ids";
import {
  type JsonAnswer,
  jsonAnswer,
  jsonObjectAnswer,
  jsonPieces,
  sampleSchema,
  type ToolDef,
  toolArguments,
} from "../reply";
import type { BufferedResult, Call, JsonObject, NormalizedMessage, Result, Usage } from "../types";
import { errorResult, parseErrorResult } from "./openai";
import { checkChatRequest } from "./openai-chat-request";
import { isReasoningModel, REASONING_TOKENS } from "./responses-request";

/** Usage as chat completions report it, with the detail objects OpenAI always sends. */
interface ChatUsage extends Usage {
  prompt_tokens_details: { cached_tokens: number };
  completion_tokens_details: { reasoning_tokens: number };
}

interface ToolCallDelta {
  index: number;
  id?: string;
  type?: "function";
  function: { name?: string; arguments: string };
}

interface Delta {
  role?: "assistant";
  content?: string | null;
  tool_calls?: ToolCallDelta[];
}

interface ChunkChoice {
  index: number;
  delta: Delta;
  logprobs: null;
  finish_reason: string | null;
}

interface ChatChunk {
  id: string;
  object: "chat.completion.chunk";
  created: number;
  model: string | null;
  system_fingerprint: string;
  service_tier?: string;
  choices: ChunkChoice[];
  usage?: ChatUsage | null;
}

/** What the fake model answers, before it is put on the wire. */
type Answer =
  | { kind: "text"; completion: Completion }
  | { kind: "json"; json: JsonAnswer }
  | { kind: "tool"; id: string; name: string; json: JsonAnswer; stopFinish: boolean };

type ToolChoice = "none" | "auto" | "required" | { name: string };
type ResponseFormat =
  | { kind: "text" }
  | { kind: "json_object" }
  | { kind: "json_schema"; name: string; schema: unknown };

const FINGERPRINT = "fp_emulator";

function badParam(message: string, param: string, code: string | null = null): BufferedResult {
  return errorResult(400, message, "invalid_request_error", code, param);
}

function isResult<T>(value: T | BufferedResult): value is BufferedResult {
  return typeof value === "object" && value !== null && "status" in value;
}

function missing(param: string): BufferedResult {
  return badParam(`Missing required parameter: '${param}'.`, param, "missing_required_parameter");
}

/** Function tools (other tool types are accepted and never called) or OpenAI's 400. */
function parseTools(tools: unknown): ToolDef[] | BufferedResult {
  if (tools === undefined || tools === null) return [];
  if (!Array.isArray(tools)) {
    return badParam(
      `Invalid type for 'tools': expected an array of objects, but got ${typeof tools} instead.`,
      "tools",
      "invalid_type",
    );
  }
  const list: readonly unknown[] = tools;
  const out: ToolDef[] = [];
  for (const [i, tool] of list.entries()) {
    if (prop(tool, "type") !== "function") continue;
    const fn = prop(tool, "function");
    if (!isJsonObject(fn)) return missing(`tools[${i}].function`);
    if (typeof fn.name !== "string" || fn.name === "") return missing(`tools[${i}].function.name`);
    out.push({ name: fn.name, schema: fn.parameters });
  }
  return out;
}

function parseToolChoice(choice: unknown, tools: readonly ToolDef[], given: boolean): ToolChoice | BufferedResult {
  if (choice === undefined || choice === null) return given ? "auto" : "none";
  if (!given && choice !== "none") {
    return badParam(
      "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.",
      "tool_choice",
    );
  }
  if (choice === "none" || choice === "auto" || choice === "required") return choice;
  let name: unknown;
  if (prop(choice, "type") === "function") name = prop(prop(choice, "function"), "name");
  else if (prop(choice, "type") === "allowed_tools") {
    // {type: "allowed_tools", allowed_tools: {mode, tools: [{type: "function", name}]}}: the first allowed.
    const allowed = prop(prop(choice, "allowed_tools"), "tools");
    name = Array.isArray(allowed) ? prop(allowed[0], "name") : undefined;
  } else {
    return badParam(
      `Invalid value: '${typeof choice === "string" ? choice : JSON.stringify(choice)}'. Supported values are: 'none', 'auto', and 'required'.`,
      "tool_choice",
      "invalid_value",
    );
  }
  if (typeof name !== "string") return missing("tool_choice.function.name");
  if (!tools.some((t) => t.name === name)) {
    return badParam(`Invalid value for 'tool_choice': function '${name}' not found in 'tools'.`, "tool_choice");
  }
  return { name };
}

function parseResponseFormat(format: unknown): ResponseFormat | BufferedResult {
  if (format === undefined || format === null) return { kind: "text" };
  const type = prop(format, "type");
  if (type === "text") return { kind: "text" };
  if (type === "json_object") return { kind: "json_object" };
  if (type === "json_schema") {
    const spec = prop(format, "json_schema");
    if (!isJsonObject(spec)) return missing("response_format.json_schema");
    if (typeof spec.name !== "string" || spec.name === "") return missing("response_format.json_schema.name");
    return { kind: "json_schema", name: spec.name, schema: spec.schema ?? {} };
  }
  return badParam(
    `Invalid value: '${String(type)}'. Supported values are: 'text', 'json_object', and 'json_schema'.`,
    "response_format.type",
    "invalid_value",
  );
}

/** Picks the answer kind; `last` is the last message (a tool result gets a text answer). */
function decideAnswer(
  call: Call,
  body: JsonObject,
  normalized: readonly NormalizedMessage[],
  tools: readonly ToolDef[],
  choice: ToolChoice,
  format: ResponseFormat,
  maxTokens: unknown,
): Answer {
  const lastRole = prop(Array.isArray(body.messages) ? body.messages.at(-1) : undefined, "role");
  const answersToolResult = lastRole === "tool" || lastRole === "function";
  const first = choice === "auto" ? autoTool(tools, normalized) : tools[0];
  if (first !== undefined && choice !== "none" && !answersToolResult) {
    const tool = typeof choice === "object" ? (tools.find((t) => t.name === choice.name) ?? first) : first;
    return {
      kind: "tool",
      id: `call_${randomId(24)}`,
      name: tool.name,
      json: toolArguments(tool, call.model, normalized, maxTokens),
      // OpenAI's own quirk: a call forced by name finishes with "stop", not "tool_calls"
      stopFinish: typeof choice === "object" && call.route.head === "openai",
    };
  }
  if (format.kind === "json_schema") {
    const value = sampleSchema(format.schema, call.model, normalized, `json_schema:${format.name}`);
    return { kind: "json", json: jsonAnswer(value, maxTokens) };
  }
  if (format.kind === "json_object") return { kind: "json", json: jsonObjectAnswer(call.model, normalized, maxTokens) };
  return { kind: "text", completion: complete(normalized, call.model, maxTokens) };
}

function completionTokens(answer: Answer): number {
  return answer.kind === "text" ? answer.completion.completionTokens : answer.json.tokens;
}

function finishReason(answer: Answer): string {
  if (answer.kind === "text") return answer.completion.finishReason;
  if (answer.json.finishReason === "length") return "length";
  return answer.kind === "tool" && !answer.stopFinish ? "tool_calls" : "stop";
}

function chatUsage(usage: Usage, reasoningTokens: number): ChatUsage {
  return {
    ...usage,
    prompt_tokens_details: { cached_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: reasoningTokens },
  };
}

function message(answer: Answer) {
  if (answer.kind === "tool") {
    const fn = { name: answer.name, arguments: answer.json.text };
    return {
      role: "assistant",
      content: null,
      tool_calls: [{ id: answer.id, type: "function", function: fn }],
      refusal: null,
    };
  }
  const content = answer.kind === "text" ? answer.completion.text : answer.json.text;
  return { role: "assistant", content, refusal: null };
}

/** The deltas of a streamed answer, before the closing `delta: {}` chunk. */
function deltas(answer: Answer): Delta[] {
  if (answer.kind === "tool") {
    const head: ToolCallDelta = {
      index: 0,
      id: answer.id,
      type: "function",
      function: { name: answer.name, arguments: "" },
    };
    const out: Delta[] = [{ role: "assistant", content: null, tool_calls: [head] }];
    for (const piece of jsonPieces(answer.json.text))
      out.push({ tool_calls: [{ index: 0, function: { arguments: piece } }] });
    return out;
  }
  const texts = answer.kind === "text" ? pieces(answer.completion) : jsonPieces(answer.json.text);
  return [{ role: "assistant", content: "" }, ...texts.map((content) => ({ content }))];
}

function chatChunks(
  id: string,
  created: number,
  model: string | null,
  answer: Answer,
  usage: Usage,
  reasoningTokens: number,
  includeUsage: boolean,
  tier: JsonObject,
): string[] {
  const head = {
    id,
    object: "chat.completion.chunk" as const,
    created,
    model,
    ...tier,
    system_fingerprint: FINGERPRINT,
  };
  const event = (choices: ChunkChoice[], chunkUsage: ChatUsage | null) => {
    const chunk: ChatChunk = { ...head, choices };
    if (includeUsage) chunk.usage = chunkUsage;
    return `data: ${JSON.stringify(chunk)}\n\n`;
  };
  const choice = (delta: Delta, finish: string | null): ChunkChoice[] => [
    { index: 0, delta, logprobs: null, finish_reason: finish },
  ];
  const out = deltas(answer).map((delta) => event(choice(delta, null), null));
  out.push(event(choice({}, finishReason(answer)), null));
  if (includeUsage) out.push(event([], chatUsage(usage, reasoningTokens)));
  out.push("data: [DONE]\n\n");
  return out;
}

/** OpenAI says which tier served a completion (`auto`: the project's default); others say nothing. */
function servedTier(call: Call, asked: unknown): JsonObject {
  if (call.provider !== "openai") return {};
  return { service_tier: typeof asked === "string" && asked !== "auto" ? asked : "default" };
}

// OpenAI refuses JSON mode unless the conversation says "json" (other providers: UNCONFIRMED, not checked).
function mentionsJson(normalized: readonly NormalizedMessage[]): boolean {
  return normalized.some((m) => m.text.toLowerCase().includes("json"));
}

/** POST chat/completions. `call.model` is the model to report (no provider prefix). */
export function chat(call: Call): Result {
  const body = call.json;
  if (call.parseError || !isJsonObject(body)) return parseErrorResult();
  if (typeof body.model !== "string" || body.model === "") {
    return errorResult(400, "you must provide a model parameter", "invalid_request_error", null, "model");
  }
  if (!Array.isArray(body.messages)) return missing("messages");
  if (body.messages.length === 0) {
    return badParam(
      "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
      "messages",
      "empty_array",
    );
  }
  if (call.provider === "openai") {
    const problem = checkChatRequest(body, call.model ?? body.model);
    if (problem) return problem;
  }
  const tools = parseTools(body.tools);
  if (!Array.isArray(tools)) return tools;
  const choice = parseToolChoice(body.tool_choice, tools, Array.isArray(body.tools) && body.tools.length > 0);
  if (isResult(choice)) return choice;
  const format = parseResponseFormat(body.response_format);
  if (isResult(format)) return format;
  const normalized = normalizeMessages(body.messages);
  if (format.kind === "json_object" && call.provider === "openai" && !mentionsJson(normalized)) {
    return badParam(
      "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.",
      "messages",
    );
  }
  const answer = decideAnswer(
    call,
    body,
    normalized,
    tools,
    choice,
    format,
    body.max_completion_tokens ?? body.max_tokens,
  );
  const prompt = promptTokens(normalized) + toolsPromptTokens(body.tools);
  // a reasoning model thinks before it answers: billed as output, never seen
  const reasoning =
    call.provider === "openai" && isReasoningModel(String(call.model ?? body.model))
      ? (REASONING_TOKENS[String(body.reasoning_effort ?? "medium")] ?? 0)
      : 0;
  const completionCount = completionTokens(answer) + reasoning;
  const usage: Usage = {
    prompt_tokens: prompt,
    completion_tokens: completionCount,
    total_tokens: prompt + completionCount,
  };
  const id = `chatcmpl-${randomId(29)}`;
  const created = Math.floor(Date.now() / 1000);
  const includeUsage = prop(body.stream_options, "include_usage") === true;
  const tier = servedTier(call, body.service_tier);
  const result: Result =
    body.stream === true
      ? sseResult(chatChunks(id, created, call.model, answer, usage, reasoning, includeUsage, tier))
      : jsonResult(200, {
          id,
          object: "chat.completion",
          created,
          model: call.model,
          ...tier,
          system_fingerprint: FINGERPRINT,
          choices: [{ index: 0, message: message(answer), logprobs: null, finish_reason: finishReason(answer) }],
          usage: chatUsage(usage, reasoning),
        });
  result.usage = usage;
  return result;
}
