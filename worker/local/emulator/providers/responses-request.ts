// The request side of OpenAI's Responses API (providers/openai-responses.ts): what OpenAI checks
// before it generates, each failure as its 400 {error: {message, type, param, code}} naming the
// param, and the conversation the fake model reads.
//
// The conversation (what seeds the reply and counts as input tokens, see the module header of
// openai-responses.ts): `instructions` as a leading "system" message, then the turns of the
// previous_response_id chain (each one's input and output; never its instructions), then this
// `input`: a string is one user message; a message item {role, content} counts its content's
// text (input_text / output_text parts; images add nothing); function_call counts as an
// assistant message holding its `arguments`, function_call_output as a "tool" message holding
// its `output`; reasoning and other items are not read.
import { promptTokens, textOf, toolsPromptTokens } from "../completion";
import { isJsonObject } from "../http";
import type { ToolDef } from "../reply";
import type { GenerateContext } from "../state";
import type { BufferedResult, Call, JsonObject, NormalizedMessage, StoredResponse } from "../types";
import { parseErrorResult } from "./openai";
import {
  badType,
  badValue,
  fail,
  given,
  Invalid,
  missing,
  numberIn,
  optionalBoolean,
  optionalString,
  requiredString,
} from "./responses-errors";
import { parseText, parseToolChoice, parseTools, type TextFormat, type ToolChoice } from "./responses-tools";

/** A validated Responses request: what generation, the echoed fields and the store need. */
export interface ResponsesRequest {
  body: JsonObject;
  model: string;
  instructions: string | null;
  /** instructions + the previous_response_id chain + this input. */
  normalized: NormalizedMessage[];
  /** This input alone (what the stored turn keeps). */
  input: NormalizedMessage[];
  inputCalls: string[];
  inputOutputs: string[];
  /** The last input item is a function_call_output: the model answers it in words. */
  answersToolOutput: boolean;
  tools: ToolDef[];
  /** `tools` as the response shows them (function tools with every field). */
  toolsEcho: unknown[];
  choice: ToolChoice;
  choiceEcho: unknown;
  format: TextFormat;
  text: JsonObject;
  reasoning: { effort: string | null; summary: unknown };
  /** Reasoning tokens the model spends before it answers (0 for models that do not reason). */
  reasoningTokens: number;
  maxOutputTokens: number | null;
  previous: StoredResponse | null;
  store: boolean;
  inputTokens: number;
}

// Every body field of the SDK's ResponseCreateParams (openai-python 3.63.0), plus `stream`, and
// `client_metadata`, which Codex sends with every request and OpenAI takes (not in the SDK).
// biome-ignore format: a compact list of names
export const KNOWN_PARAMS = new Set([
  "client_metadata", "access_programs", "background", "background_options", "context_management", "conversation", "image",
  "include", "input", "instructions", "max_output_tokens", "max_tool_calls", "metadata", "model", "moderation",
  "parallel_tool_calls", "previous_response_id", "prompt", "prompt_cache_key", "prompt_cache_options",
  "prompt_cache_retention", "reasoning", "safety_identifier", "service_tier", "store", "stream", "stream_options",
  "temperature", "text", "tool_choice", "tools", "top_logprobs", "top_p", "truncation", "user",
]);
const ROLES = ["assistant", "system", "developer", "user"];
const INPUT_PARTS = ["input_text", "input_image", "input_file", "input_audio"];
const OUTPUT_PARTS = ["output_text", "refusal"];
// Input item types accepted and not read (the model's own items handed back, built-in tool calls).
// biome-ignore format: a compact list of names
const UNREAD_ITEMS = [
  "reasoning", "item_reference", "web_search_call", "file_search_call", "computer_call", "computer_call_output",
  "image_generation_call", "code_interpreter_call", "local_shell_call", "local_shell_call_output", "shell_call",
  "shell_call_output", "apply_patch_call", "apply_patch_call_output", "mcp_list_tools", "mcp_approval_request",
  "mcp_approval_response", "mcp_call", "custom_tool_call", "custom_tool_call_output", "compaction",
  // Codex's tools offered mid-conversation ({type, role: "developer", tools}): taken, never called here
  "additional_tools",
];
const ITEM_TYPES = ["message", "function_call", "function_call_output", ...UNREAD_ITEMS];
/** Reasoning tokens per reasoning.effort (the emulator's rule; default effort "medium"). */
export const REASONING_TOKENS: Readonly<Record<string, number>> = {
  none: 0,
  minimal: 8,
  low: 16,
  medium: 32,
  high: 64,
  xhigh: 128,
  max: 256,
};
const MIN_OUTPUT_TOKENS = 16;
const METADATA_MAX_KEYS = 16;

function maxOutputTokens(body: JsonObject): number | null {
  const value = given(body.max_output_tokens);
  if (value === undefined) return null;
  if (typeof value !== "number" || !Number.isInteger(value)) badType("max_output_tokens", "an integer", value);
  if (value < MIN_OUTPUT_TOKENS) {
    fail(
      `Invalid 'max_output_tokens': integer below minimum value. Expected a value >= ${MIN_OUTPUT_TOKENS}, but got ${value} instead.`,
      "max_output_tokens",
      "integer_below_min_value",
    );
  }
  return value;
}

// The tiers OpenAI serves (and names in the 400 for any other), on both its APIs.
export const SERVICE_TIERS = ["auto", "default", "flex", "scale", "priority"];

function checkParams(body: JsonObject): void {
  for (const key of Object.keys(body)) {
    if (KNOWN_PARAMS.has(key)) continue;
    if (key === "response_format") {
      fail(
        "Unsupported parameter: 'response_format'. In the Responses API, this parameter has moved to 'text.format'. Try again with the new parameter. See the API documentation for more information: https://platform.openai.com/docs/api-reference/responses/create.",
        key,
        "unsupported_parameter",
      );
    }
    fail(`Unknown parameter: '${key}'.`, key, "unknown_parameter");
  }
  const tier = given(body.service_tier);
  if (tier !== undefined && !SERVICE_TIERS.includes(String(tier))) {
    badValue("service_tier", tier, SERVICE_TIERS);
  }
  const options = given(body.stream_options);
  if (options === undefined) return;
  if (!isJsonObject(options)) badType("stream_options", "an object", options);
  for (const key of Object.keys(options)) {
    if (key !== "include_obfuscation")
      fail(`Unknown parameter: 'stream_options.${key}'.`, `stream_options.${key}`, "unknown_parameter");
  }
}

function checkMetadata(value: unknown): void {
  if (given(value) === undefined) return;
  if (!isJsonObject(value)) badType("metadata", "an object", value);
  const entries = Object.entries(value);
  if (entries.length > METADATA_MAX_KEYS) {
    fail(
      `Invalid 'metadata': too many properties. Expected an object with at most ${METADATA_MAX_KEYS} properties, but got an object with ${entries.length} properties instead.`,
      "metadata",
      "object_above_max_properties",
    );
  }
  for (const [key, v] of entries) {
    if (key.length > 64) {
      fail(
        `Invalid 'metadata': key too long. Expected a key with maximum length 64, but got a key with length ${key.length} instead.`,
        "metadata",
        "invalid_value",
      );
    }
    if (typeof v !== "string") badType(`metadata.${key}`, "a string", v);
    if (v.length > 512) {
      fail(
        `Invalid 'metadata.${key}': string too long. Expected a string with maximum length 512, but got a string with length ${v.length} instead.`,
        `metadata.${key}`,
        "string_above_max_length",
      );
    }
  }
}

export function isReasoningModel(model: string): boolean {
  return /^o\d/.test(model) || (model.startsWith("gpt-5") && !model.includes("-chat"));
}

function parseReasoning(body: JsonObject, reasoningModel: boolean): ResponsesRequest["reasoning"] {
  for (const param of ["temperature", "top_p"]) {
    if (reasoningModel && given(body[param]) !== undefined) {
      fail(`Unsupported parameter: '${param}' is not supported with this model.`, param, "unsupported_parameter");
    }
  }
  const value = given(body.reasoning);
  if (value !== undefined && !isJsonObject(value)) badType("reasoning", "an object", value);
  const effort = given(value?.effort);
  const summary = given(value?.summary ?? value?.generate_summary);
  const checks: [string, unknown, readonly string[]][] = [
    ["reasoning.effort", effort, Object.keys(REASONING_TOKENS)],
    ["reasoning.summary", summary, ["auto", "concise", "detailed"]],
  ];
  for (const [param, v, supported] of checks) {
    if (v === undefined) continue;
    if (!reasoningModel)
      fail(`Unsupported parameter: '${param}' is not supported with this model.`, param, "unsupported_parameter");
    if (typeof v !== "string" || !supported.includes(v)) badValue(param, v, supported);
  }
  if (!reasoningModel) return { effort: null, summary: null };
  return { effort: typeof effort === "string" ? effort : "medium", summary: summary ?? null };
}

/** One content part of a message item; `allowed` depends on the role. */
function checkPart(part: unknown, at: string, allowed: readonly string[]): void {
  if (!isJsonObject(part)) badType(at, "an object", part);
  const type = part.type;
  if (type === undefined) missing(`${at}.type`);
  if (typeof type !== "string" || !allowed.includes(type)) badValue(at, type, allowed);
  if ((type === "input_text" || type === "output_text") && typeof part.text !== "string") {
    if (part.text === undefined) missing(`${at}.text`);
    badType(`${at}.text`, "a string", part.text);
  }
  if (type === "refusal" && typeof part.refusal !== "string") missing(`${at}.refusal`);
  if (type === "input_image" && given(part.image_url) === undefined && given(part.file_id) === undefined) {
    missing(`${at}.image_url`);
  }
}

function messageItem(item: JsonObject, at: string): NormalizedMessage {
  const role = item.role;
  if (role === undefined) missing(`${at}.role`);
  if (typeof role !== "string" || !ROLES.includes(role)) badValue(`${at}.role`, role, ROLES);
  const content = item.content;
  if (content === undefined || content === null) missing(`${at}.content`);
  if (typeof content !== "string") {
    if (!Array.isArray(content)) badType(`${at}.content`, "one of a string or array of content parts", content);
    const parts: readonly unknown[] = content;
    const allowed = role === "assistant" ? OUTPUT_PARTS : INPUT_PARTS;
    for (const [j, part] of parts.entries()) checkPart(part, `${at}.content[${j}]`, allowed);
  }
  return { role, text: textOf(content) };
}

interface ParsedInput {
  messages: NormalizedMessage[];
  calls: string[];
  outputs: string[];
  lastType: string;
}

function parseInput(input: unknown, chained: boolean): ParsedInput {
  if (input === undefined || input === null) missing("input");
  if (typeof input === "string")
    return { messages: [{ role: "user", text: input }], calls: [], outputs: [], lastType: "message" };
  if (!Array.isArray(input)) badType("input", "one of a string or array of input items", input);
  const items: readonly unknown[] = input;
  if (items.length === 0 && !chained) {
    fail(
      "Invalid 'input': empty array. Expected an array with minimum length 1, but got an empty array instead.",
      "input",
      "empty_array",
    );
  }
  const out: ParsedInput = { messages: [], calls: [], outputs: [], lastType: "" };
  for (const [i, item] of items.entries()) {
    const at = `input[${i}]`;
    if (!isJsonObject(item)) badType(at, "an input item object", item);
    const type = given(item.type) ?? (item.role !== undefined ? "message" : undefined);
    if (type === undefined) missing(`${at}.type`);
    if (typeof type !== "string" || !ITEM_TYPES.includes(type)) badValue(`${at}.type`, type, ITEM_TYPES);
    out.lastType = type;
    if (type === "message") out.messages.push(messageItem(item, at));
    else if (type === "function_call") {
      const callId = requiredString(item, "call_id", at);
      requiredString(item, "name", at);
      out.messages.push({ role: "assistant", text: requiredString(item, "arguments", at) });
      out.calls.push(callId);
    } else if (type === "function_call_output") {
      out.outputs.push(requiredString(item, "call_id", at));
      const output = item.output;
      if (output === undefined || output === null) missing(`${at}.output`);
      if (typeof output !== "string" && !Array.isArray(output)) {
        badType(`${at}.output`, "one of a string or array of content parts", output);
      }
      out.messages.push({ role: "tool", text: textOf(output) });
    }
  }
  return out;
}

/** The stored response previous_response_id names and the chain of turns it ends (oldest first). */
function previousChain(
  body: JsonObject,
  ctx: GenerateContext,
): { previous: StoredResponse | null; turns: StoredResponse[] } {
  const id = optionalString(body, "previous_response_id");
  if (id === undefined) return { previous: null, turns: [] };
  if (!id.startsWith("resp")) {
    fail(
      `Invalid 'previous_response_id': '${id}'. Expected an ID that begins with 'resp'.`,
      "previous_response_id",
      "invalid_value",
    );
  }
  const previous = ctx.responses.get(ctx.gatewayId, id);
  if (previous === undefined) {
    fail(`Previous response with id '${id}' not found.`, "previous_response_id", "previous_response_not_found");
  }
  const turns: StoredResponse[] = [];
  for (let r: StoredResponse | null = previous; r !== null; r = r.previous) turns.push(r);
  return { previous, turns: turns.reverse() };
}

/** Every function_call_output answers a known call, and every call has its output (OpenAI's two 400s). */
function checkToolOutputs(turns: readonly StoredResponse[], input: ParsedInput): void {
  const calls = [...turns.flatMap((t) => t.calls), ...input.calls];
  const outputs = new Set([...turns.flatMap((t) => t.outputs), ...input.outputs]);
  for (const id of input.outputs) {
    if (!calls.includes(id)) fail(`No tool call found for function call output with call_id ${id}.`, "input");
  }
  for (const id of calls) if (!outputs.has(id)) fail(`No tool output found for function call ${id}.`, "input");
}

function parse(call: Call, ctx: GenerateContext): ResponsesRequest {
  const body = call.json;
  if (call.parseError || !isJsonObject(body)) throw new Invalid(parseErrorResult());
  checkParams(body);
  const model = body.model;
  if (model === undefined || model === null || model === "") missing("model");
  if (typeof model !== "string") badType("model", "a string", model);
  for (const param of ["stream", "parallel_tool_calls", "background"]) optionalBoolean(body, param);
  const store = optionalBoolean(body, "store") ?? true;
  const instructions = optionalString(body, "instructions") ?? null;
  for (const param of ["user", "safety_identifier", "prompt_cache_key"]) optionalString(body, param);
  const chain = previousChain(body, ctx);
  const input = parseInput(body.input, chain.previous !== null);
  const maxTokens = maxOutputTokens(body);
  numberIn(body, "temperature", 0, 2);
  numberIn(body, "top_p", 0, 1);
  checkMetadata(body.metadata);
  const reasoningModel = isReasoningModel(model);
  const reasoning = parseReasoning(body, reasoningModel);
  const tools = parseTools(body.tools);
  const choice = parseToolChoice(body.tool_choice, tools);
  const text = parseText(body.text);
  checkToolOutputs(chain.turns, input);
  const normalized: NormalizedMessage[] = [
    ...(instructions === null ? [] : [{ role: "system", text: instructions }]),
    ...chain.turns.flatMap((t) => t.turn),
    ...input.messages,
  ];
  if (text.format.kind === "json_object" && !normalized.some((m) => m.text.toLowerCase().includes("json"))) {
    fail(
      "Response input messages must contain the word 'json' in some form to use 'text.format' of type 'json_object'.",
      "input",
    );
  }
  return {
    body,
    model,
    instructions,
    normalized,
    input: input.messages,
    inputCalls: input.calls,
    inputOutputs: input.outputs,
    answersToolOutput: input.lastType === "function_call_output",
    tools: tools.tools,
    toolsEcho: tools.echo,
    choice: choice.choice,
    choiceEcho: choice.echo,
    format: text.format,
    text: text.echo,
    reasoning,
    reasoningTokens: reasoningModel ? (REASONING_TOKENS[reasoning.effort ?? "medium"] ?? 0) : 0,
    maxOutputTokens: maxTokens,
    previous: chain.previous,
    store,
    inputTokens: promptTokens(normalized) + toolsPromptTokens(body.tools),
  };
}

/** The validated request, or OpenAI's 400 for the first thing wrong with it. */
export function parseRequest(call: Call, ctx: GenerateContext): ResponsesRequest | BufferedResult {
  try {
    return parse(call, ctx);
  } catch (err) {
    if (err instanceof Invalid) return err.result;
    throw err;
  }
}
