// OpenAI Responses API (POST /openai/responses and /openai/v1/responses; cf-contract-2 3.1):
// request checks in responses-request.ts, the SSE stream in responses-stream.ts.
//
// The answer, deterministic like the chat emulator's (same conversation, same words):
//  * A function_call item when function tools are given, tool_choice is not "none" (nor a
//    built-in tool) and the last input item is not a function_call_output: a call to the tool
//    tool_choice names, else the first function tool; `arguments` valid against its parameters
//    schema (reply.ts). Else JSON for text.format json_schema (valid against its schema) or
//    json_object ({"answer": "<words>"}), else words: 12, or N with `emulate:tokens=N` in the
//    last user message.
//  * With a web_search tool offered and `emulate:search=N` in the last user message, N
//    web_search_call items come first (completion.ts; at most max_tool_calls): what OpenAI bills
//    per call beside the tokens; what each read adds SEARCH_INPUT_TOKENS to the input.
//  * Reasoning models (ids "o<digit>...", or "gpt-5..." but not "gpt-5...-chat..."): a
//    reasoning item {id: "rs_...", type: "reasoning", summary: []} comes first and the model
//    spends reasoning tokens by reasoning.effort (default medium): none 0, minimal 8, low 16,
//    medium 32, high 64, xhigh 128, max 256. With effort none there is no reasoning item.
//  * max_output_tokens (>= 16, as OpenAI requires) caps reasoning + visible tokens: the visible
//    answer gets cap - reasoning tokens (words or the JSON text's first bytes, reply.ts); when
//    that cuts it, or reasoning alone reaches the cap (then no message / call item at all),
//    status is "incomplete" with incomplete_details {reason: "max_output_tokens"} and the
//    item's status "incomplete".
// Usage:
//  * input_tokens = 3 + sum over the conversation's messages of (4 + ceil(utf8_bytes(text) / 4)),
//    plus 4 + ceil(utf8_bytes(JSON of `tools` as sent) / 4) when tools are given: the chat
//    emulator's prompt_tokens formula over the conversation responses-request.ts builds
//    (instructions as a system message, the previous_response_id chain's inputs and outputs,
//    this input). input_tokens_details {cached_tokens: 0, cache_write_tokens: 0}: no prompt
//    caching is emulated.
//  * output_tokens = reasoning tokens + visible tokens (one per word; ceil(utf8_bytes / 4) of a
//    JSON text); output_tokens_details.reasoning_tokens = the reasoning part;
//    total_tokens = input_tokens + output_tokens.
// State: unless store is false the response is kept per gateway (emulator reset clears it) for
// previous_response_id, which continues its conversation (instructions are not carried over);
// an id that is unknown on this gateway, or was created with store false, is 400
// previous_response_not_found.
import {
  autoTool,
  type Completion,
  complete,
  lastUserText,
  pieces,
  plannedRunMs,
  plannedSearches,
  randomWords,
  requestRng,
} from "../completion";
import { jsonResult, prop, sseResult } from "../http";
import { randomBase62, randomId } from "../ids";
import { type JsonAnswer, jsonAnswer, jsonObjectAnswer, jsonPieces, sampleSchema, toolArguments } from "../reply";
import type { GenerateContext } from "../state";
import type { BufferedResult, Call, JsonObject, NormalizedMessage, Result } from "../types";
import { errorResult } from "./openai";
import { parseRequest, type ResponsesRequest } from "./responses-request";
import { type StreamItem, streamChunks } from "./responses-stream";

/** The visible part of an answer. */
type Visible =
  | { kind: "text"; completion: Completion }
  | { kind: "json"; json: JsonAnswer }
  | { kind: "tool"; name: string; json: JsonAnswer };

interface Answer {
  reasoningTokens: number;
  /** null when reasoning used up max_output_tokens. */
  visible: Visible | null;
  incomplete: boolean;
}

/** An id like OpenAI's: prefix + 48 hex digits. */
function objectId(prefix: string): string {
  return `${prefix}_${randomId(24)}${randomId(24)}`;
}

function decideVisible(call: Call, req: ResponsesRequest, cap: number | undefined): Visible {
  const { normalized, choice } = req;
  const first = choice === "auto" ? autoTool(req.tools, normalized) : req.tools[0];
  if (first !== undefined && choice !== "none" && !req.answersToolOutput) {
    const tool = typeof choice === "object" ? (req.tools.find((t) => t.name === choice.name) ?? first) : first;
    return { kind: "tool", name: tool.name, json: toolArguments(tool, call.model, normalized, cap) };
  }
  const format = req.format;
  if (format.kind === "json_schema") {
    const value = sampleSchema(format.schema, call.model, normalized, `json_schema:${format.name}`);
    return { kind: "json", json: jsonAnswer(value, cap) };
  }
  if (format.kind === "json_object") return { kind: "json", json: jsonObjectAnswer(call.model, normalized, cap) };
  return { kind: "text", completion: complete(normalized, call.model, cap) };
}

function decideAnswer(call: Call, req: ResponsesRequest): Answer {
  const reasoning = req.reasoningTokens;
  const cap = req.maxOutputTokens;
  if (cap !== null && reasoning > 0 && cap <= reasoning) {
    return { reasoningTokens: cap, visible: null, incomplete: true };
  }
  const visible = decideVisible(call, req, cap === null ? undefined : cap - reasoning);
  const finish = visible.kind === "text" ? visible.completion.finishReason : visible.json.finishReason;
  return { reasoningTokens: reasoning, visible, incomplete: finish === "length" };
}

function visibleTokens(visible: Visible | null): number {
  if (visible === null) return 0;
  return visible.kind === "text" ? visible.completion.completionTokens : visible.json.tokens;
}

/** The output items, each with its streamed form, and what the next turn reads of them. */
function outputItems(
  answer: Answer,
  hasReasoning: boolean,
  searches: number,
  normalized: readonly NormalizedMessage[],
  container: string | null,
): { items: StreamItem[]; turn: NormalizedMessage[]; calls: string[] } {
  const items: StreamItem[] = [];
  if (container !== null) {
    const head = { id: objectId("ci"), type: "code_interpreter_call", container_id: container };
    items.push({
      item: { ...head, status: "completed", code: CODE, outputs: null },
      added: { ...head, status: "in_progress", code: "", outputs: null },
      pieces: [CODE],
    });
  }
  for (let i = 0; i < searches; i++) {
    const query = randomWords(requestRng(null, normalized, `search:${i}`), 3);
    const head = { id: objectId("ws"), type: "web_search_call" };
    const action = { type: "search", query };
    items.push({
      item: { ...head, status: "completed", action },
      added: { ...head, status: "in_progress", action },
      pieces: [],
    });
  }
  if (hasReasoning) {
    const reasoning = { id: objectId("rs"), type: "reasoning", summary: [] };
    items.push({ item: reasoning, added: reasoning, pieces: [] });
  }
  const visible = answer.visible;
  if (visible === null) return { items, turn: [], calls: [] };
  const status = answer.incomplete ? "incomplete" : "completed";
  if (visible.kind === "tool") {
    const head = { id: objectId("fc"), type: "function_call" };
    const fields = { call_id: `call_${randomBase62(24)}`, name: visible.name };
    const text = visible.json.text;
    items.push({
      item: { ...head, status, arguments: text, ...fields },
      added: { ...head, status: "in_progress", arguments: "", ...fields },
      pieces: jsonPieces(text),
    });
    return { items, turn: [{ role: "assistant", text }], calls: [fields.call_id] };
  }
  const text = visible.kind === "text" ? visible.completion.text : visible.json.text;
  const head = { id: objectId("msg"), type: "message" };
  const content = [{ type: "output_text", annotations: [], logprobs: [], text }];
  items.push({
    item: { ...head, status, content, role: "assistant" },
    added: { ...head, status: "in_progress", content: [], role: "assistant" },
    pieces: visible.kind === "text" ? pieces(visible.completion) : jsonPieces(text),
  });
  return { items, turn: [{ role: "assistant", text }], calls: [] };
}

/** The response as response.created shows it (in progress); the final one overrides status, output, usage. */
function inProgress(id: string, req: ResponsesRequest): JsonObject {
  const body = req.body;
  const or = (key: string, fallback: unknown) => body[key] ?? fallback;
  const tier = or("service_tier", "default");
  return {
    id,
    object: "response",
    created_at: Math.floor(Date.now() / 1000),
    status: "in_progress",
    background: or("background", false),
    completed_at: null,
    error: null,
    incomplete_details: null,
    instructions: req.instructions,
    max_output_tokens: req.maxOutputTokens,
    max_tool_calls: or("max_tool_calls", null),
    model: req.model,
    output: [],
    parallel_tool_calls: or("parallel_tool_calls", true),
    previous_response_id: or("previous_response_id", null),
    prompt_cache_key: or("prompt_cache_key", null),
    prompt_cache_retention: or("prompt_cache_retention", null),
    reasoning: req.reasoning,
    safety_identifier: or("safety_identifier", null),
    service_tier: tier === "auto" ? "default" : tier,
    store: req.store,
    temperature: or("temperature", 1),
    text: req.text,
    tool_choice: req.choiceEcho,
    tools: req.toolsEcho,
    top_logprobs: or("top_logprobs", 0),
    top_p: or("top_p", 1),
    truncation: or("truncation", "disabled"),
    usage: null,
    user: or("user", null),
    metadata: or("metadata", {}),
  };
}

/**
 * GET responses/{id}: a stored response as it was answered, or a background run's state
 * (in_progress until it completes, then the completed response with its usage). An id this
 * gateway never stored is OpenAI's 404.
 */
export function retrieve(call: Call, ctx: GenerateContext): Result {
  const id = decodeURIComponent(call.route.endpoint.split("/").at(-1) ?? "");
  const stored = ctx.responses.get(ctx.gatewayId, id);
  let result: Result;
  if (!stored?.body) {
    result = errorResult(404, `Response with id '${id}' not found.`, "invalid_request_error", null, null);
  } else if (stored.readyAt !== undefined && Date.now() < stored.readyAt) {
    result = jsonResult(200, { ...stored.body, status: "in_progress", completed_at: null, output: [], usage: null });
  } else {
    result = jsonResult(200, stored.body);
  }
  result.usage = null; // reading a response is not billed
  return result;
}

const CODE = "print(sum(range(10)))";
const CODE_DIRECTIVE = /emulate:code\b/;

/**
 * The container the model runs code in, when a code_interpreter tool is offered and the last
 * user message says `emulate:code`: the tool's own (a string id this gateway created before,
 * else OpenAI's 404), or a new one for {type: "auto"}. null: no code runs.
 */
function codeContainer(req: ResponsesRequest, ctx: GenerateContext): string | BufferedResult | null {
  const tool = req.toolsEcho.find((t) => prop(t, "type") === "code_interpreter");
  if (tool === undefined || !CODE_DIRECTIVE.test(lastUserText(req.normalized))) return null;
  const named = prop(tool, "container");
  if (typeof named === "string") {
    if (ctx.responses.hasContainer(ctx.gatewayId, named)) return named;
    return errorResult(404, `Container with id '${named}' not found.`, "invalid_request_error", null, null);
  }
  const id = `cntr_${randomId(24)}${randomId(24)}`;
  ctx.responses.addContainer(ctx.gatewayId, id);
  return id;
}

/** The input tokens a search's results add (as Anthropic's, providers/anthropic.ts). */
const SEARCH_INPUT_TOKENS = 1_800;

/** POST responses. */
export function responses(call: Call, ctx: GenerateContext): Result {
  const req = parseRequest(call, ctx);
  if ("status" in req) return req;
  const answer = decideAnswer(call, req);
  const searching = req.toolsEcho.some((t) => String(prop(t, "type")).startsWith("web_search"));
  const maxCalls = typeof req.body.max_tool_calls === "number" ? req.body.max_tool_calls : undefined;
  const searches = searching ? plannedSearches(req.normalized, maxCalls) : 0;
  const container = codeContainer(req, ctx);
  if (container !== null && typeof container !== "string") return container;
  const { items, turn, calls } = outputItems(answer, req.reasoningTokens > 0, searches, req.normalized, container);
  const id = objectId("resp");
  const input = req.inputTokens + searches * SEARCH_INPUT_TOKENS; // what the searches read counts as input
  const output = answer.reasoningTokens + visibleTokens(answer.visible);
  const usage = {
    input_tokens: input,
    input_tokens_details: { cached_tokens: 0, cache_write_tokens: 0 },
    output_tokens: output,
    output_tokens_details: { reasoning_tokens: answer.reasoningTokens },
    total_tokens: input + output,
  };
  const head = inProgress(id, req);
  const final = {
    ...head,
    status: answer.incomplete ? "incomplete" : "completed",
    completed_at: answer.incomplete ? null : Math.floor(Date.now() / 1000),
    incomplete_details: answer.incomplete ? { reason: "max_output_tokens" } : null,
    output: items.map((s) => s.item),
    usage,
  };
  const background = req.body.background === true && req.body.stream !== true;
  if (req.body.background === true && !req.store) {
    return errorResult(
      400,
      "Background responses must be stored: set 'store' to true.",
      "invalid_request_error",
      null,
      "store",
    );
  }
  if (req.store) {
    ctx.responses.set(ctx.gatewayId, {
      id,
      previous: req.previous,
      turn: [...req.input, ...turn],
      calls: [...req.inputCalls, ...calls],
      outputs: req.inputOutputs,
      body: final,
      ...(background ? { readyAt: Date.now() + plannedRunMs(req.normalized) } : {}),
    });
  }
  let result: Result;
  if (background) {
    // queued: no output and no usage yet; the run completes later (GET responses/{id})
    result = jsonResult(200, { ...head, status: "queued" });
    result.usage = null;
    return result;
  }
  if (req.body.stream === true) {
    const obfuscate = prop(req.body.stream_options, "include_obfuscation") !== false;
    const { chunks, failStream } = streamChunks({ inProgress: head, final, items, obfuscate });
    result = { ...sseResult(chunks), failStream };
  } else {
    result = jsonResult(200, final);
  }
  result.usage = { prompt_tokens: input, completion_tokens: output, total_tokens: input + output };
  return result;
}
