// Workers AI native run API: over HTTP (/workers-ai/{model}, /workers-ai/run/{model}) inside the
// Cloudflare v4 envelope {result, success, errors, messages}; through the AI binding
// (binding.ts) as the bare model output, which is what env.AI.run returns (the binding hands
// back the parsed JSON as is, it does not unwrap `result`; see binding.ts). Streaming (either
// way): `data: {"response": "<piece>"}` per word, a last `data: {"response": "", usage}`, then
// `data: [DONE]`.
//
// Tools (`tools`: OpenAI-style {type: "function", function: {name, parameters}} or the legacy
// {name, parameters}; tool_choice "none" / {type: "function", function: {name}} honoured):
// unless the last message is a `tool` result, the answer is
// {response: "", tool_calls: [{name, arguments: <object>}], usage} (the catalog's
// AiTextGenerationToolLegacyOutput shape); streamed as one event carrying tool_calls. The
// object form cannot be cut, so max_tokens does not apply to a tool call here.
import {
  byteTokens,
  type Completion,
  complete,
  embeddingDims,
  embeddingInputs,
  embeddingVector,
  normalizeMessages,
  pieces,
  promptTokens,
  toolsPromptTokens,
} from "../completion";
import { isJsonObject, jsonResult, prop, sseResult } from "../http";
import { sampleSchema, type ToolDef } from "../reply";
import type { BufferedResult, Call, JsonObject, NormalizedMessage, Result, Usage } from "../types";

const AUTH_ERROR_CODE = 10000; // Cloudflare API "Authentication error"
const BAD_INPUT_CODE = 5006; // Workers AI bad input; exact code/message UNCONFIRMED
const NO_MODEL_CODE = 5007; // Workers AI "No such model"; UNCONFIRMED

function envelope<T>(result: T): { result: T; success: true; errors: []; messages: [] } {
  return { result, success: true, errors: [], messages: [] };
}

export function errorResult(status: number, code: number, message: string): BufferedResult {
  return jsonResult(status, { result: null, success: false, errors: [{ code, message }], messages: [] });
}

/**
 * A model error as the binding endpoint answers it. The binding builds its exception from
 * `name` + `internalCode` + `description` (cf-contract 4.1), so env.AI.run throws
 * `AiError: 5006: ...`; the v4 `errors` list is kept for readers of raw responses
 * (returnRawResponse). The exact production body is UNCONFIRMED.
 */
export function bindingErrorResult(status: number, code: number, message: string): BufferedResult {
  return jsonResult(status, {
    name: "AiError",
    internalCode: code,
    description: message,
    success: false,
    result: null,
    errors: [{ code, message }],
    messages: [],
  });
}

/** Cloudflare's v4 error body for a status, used for faults that give no body. */
export function defaultErrorResult(status: number): BufferedResult {
  if (status === 429) return errorResult(429, 3040, "Capacity temporarily exceeded, please try again.");
  if (status >= 500) return errorResult(status, 3043, "Internal server error");
  return errorResult(status, BAD_INPUT_CODE, `Request failed with status ${status}.`);
}

export function keyErrorResult(): BufferedResult {
  return errorResult(401, AUTH_ERROR_CODE, "Authentication error");
}

function usageOf(prompt: number, completion: number): Usage {
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

function embed(call: Call, text: unknown, fail: typeof errorResult, wrap: (value: JsonObject) => unknown): Result {
  const inputs = embeddingInputs(text);
  if (inputs === null)
    return fail(400, BAD_INPUT_CODE, "AiError: Bad input: 'text' must be a string or an array of strings");
  const result = jsonResult(
    200,
    wrap({
      shape: [inputs.length, embeddingDims(call.model)],
      data: inputs.map((item) => embeddingVector(call.model, item)),
      pooling: "mean",
    }),
  );
  result.usage = null;
  return result;
}

/** Function tools in either catalog form. */
function toolsOf(tools: unknown): ToolDef[] {
  if (!Array.isArray(tools)) return [];
  const list: readonly unknown[] = tools;
  const out: ToolDef[] = [];
  for (const tool of list) {
    const fn = prop(tool, "type") === "function" ? prop(tool, "function") : tool;
    const name = prop(fn, "name");
    if (typeof name === "string" && name !== "") out.push({ name, schema: prop(fn, "parameters") });
  }
  return out;
}

/** The tool to call, or null for a text answer. */
function toolToCall(body: JsonObject, tools: readonly ToolDef[]): ToolDef | null {
  const first = tools[0];
  const choice = body.tool_choice;
  if (first === undefined || choice === "none") return null;
  const last = Array.isArray(body.messages) ? body.messages.at(-1) : undefined;
  if (prop(last, "role") === "tool") return null;
  const forced = prop(prop(choice, "function"), "name");
  return tools.find((t) => t.name === forced) ?? first;
}

function textResult(
  completion: Completion,
  usage: Usage,
  stream: boolean,
  wrap: (value: JsonObject) => unknown,
): Result {
  if (!stream) return jsonResult(200, wrap({ response: completion.text, usage }));
  const chunks = pieces(completion).map((response) => `data: ${JSON.stringify({ response })}\n\n`);
  chunks.push(`data: ${JSON.stringify({ response: "", usage })}\n\n`, "data: [DONE]\n\n");
  return sseResult(chunks);
}

function toolResult(
  call: Call,
  tool: ToolDef,
  normalized: readonly NormalizedMessage[],
  prompt: number,
  stream: boolean,
  wrap: (value: JsonObject) => unknown,
): Result {
  const args = tool.schema === undefined ? {} : sampleSchema(tool.schema, call.model, normalized, `tool:${tool.name}`);
  const toolCalls = [{ name: tool.name, arguments: args }];
  const usage = usageOf(prompt, byteTokens(JSON.stringify(args)));
  const result = !stream
    ? jsonResult(200, wrap({ response: "", tool_calls: toolCalls, usage }))
    : sseResult([
        `data: ${JSON.stringify({ response: "", tool_calls: toolCalls })}\n\n`,
        `data: ${JSON.stringify({ response: "", usage })}\n\n`,
        "data: [DONE]\n\n",
      ]);
  result.usage = usage;
  return result;
}

/** Text generation ({messages} or {prompt}) or embeddings ({text}); HTTP or binding (see header). */
export function run(call: Call): Result {
  const binding = call.route.binding === true;
  const fail = binding ? bindingErrorResult : errorResult;
  const wrap = binding ? (value: JsonObject) => value : envelope;
  const body = call.json;
  if (binding && !(call.model ?? "").startsWith("@")) {
    // Third-party models on the binding (openai/..., anthropic/...) are not emulated.
    return fail(400, NO_MODEL_CODE, `No such model ${call.model ?? ""} or task`);
  }
  if (call.parseError || !isJsonObject(body)) {
    return fail(400, BAD_INPUT_CODE, "AiError: Bad input: request body is not valid JSON");
  }
  if (body.text !== undefined) return embed(call, body.text, fail, wrap);
  let normalized: NormalizedMessage[];
  if (Array.isArray(body.messages) && body.messages.length > 0) normalized = normalizeMessages(body.messages);
  else if (typeof body.prompt === "string") normalized = [{ role: "user", text: body.prompt }];
  else return fail(400, BAD_INPUT_CODE, "AiError: Bad input: required properties 'prompt' or 'messages'");
  const prompt = promptTokens(normalized) + toolsPromptTokens(body.tools);
  const stream = body.stream === true;
  const tool = toolToCall(body, toolsOf(body.tools));
  if (tool !== null) return toolResult(call, tool, normalized, prompt, stream, wrap);
  const completion = complete(normalized, call.model, body.max_tokens, toolsPromptTokens(body.tools));
  const usage = usageOf(completion.promptTokens, completion.completionTokens);
  const result = textResult(completion, usage, stream, wrap);
  result.usage = usage;
  return result;
}
