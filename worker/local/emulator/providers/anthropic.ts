// Anthropic Messages API (native, /anthropic/v1/messages and /v1/messages/count_tokens): body,
// SSE event sequence (cf-contract-2 2.3), tool use, prompt caching (anthropic-cache.ts) and
// Anthropic's error shape.
// With the web search server tool offered (type web_search_<date>) and `emulate:search=N` in
// the last user message, the model searches N times (at most its max_uses) before it answers:
// each search a server_tool_use block and its web_search_tool_result block, the results read
// as SEARCH_INPUT_TOKENS more input each, and usage.server_tool_use.web_search_requests = N
// (in a stream: on message_delta, whose usage is cumulative), as Anthropic bills them.
import {
  autoTool,
  type Completion,
  complete,
  type FinishReason,
  normalizeMessages,
  pieces,
  plannedSearches,
  promptTokens,
  randomWords,
  requestRng,
  toolsPromptTokens,
} from "../completion";
import { isJsonObject, jsonResult, prop, sseResult } from "../http";
import { randomBase62, randomId } from "../ids";
import { type JsonAnswer, jsonAnswer, jsonPieces, sampleSchema, type ToolDef, toolArguments } from "../reply";
import type { GenerateContext } from "../state";
import type { BufferedResult, Call, JsonObject, NormalizedMessage, Result } from "../types";
import { applyPromptCache, breakpoints, type CacheUsage } from "./anthropic-cache";
import { checkRequest } from "./anthropic-request";

/** The fields every Messages API message (and a stream's message_start) begins with. */
interface MessageHead {
  id: string;
  type: "message";
  role: "assistant";
  model: string;
}

/**
 * What the fake model answers: words, a JSON document following output_config.format's schema
 * (as text), or a call to one of the request's tools.
 */
type Answer =
  | { kind: "text"; completion: Completion }
  | { kind: "json"; json: JsonAnswer }
  | { kind: "tool"; id: string; name: string; json: JsonAnswer };

/** The web searches the model runs before it answers (server tool blocks, in order). */
interface Search {
  id: string;
  query: string;
}

/** The input tokens a search's results add (what the model reads back). */
const SEARCH_INPUT_TOKENS = 1_800;

/** A validated Messages request: what generation and token counting need. */
interface Parsed {
  body: JsonObject;
  model: string;
  messages: unknown[];
  normalized: NormalizedMessage[];
  tools: ToolDef[];
  /** tool_choice: "auto" | "any" | "none", or the tool's name for {type: "tool"}. */
  choice: string;
  forced: string | null;
  /** output_config.format's JSON Schema: the answer's text is a document following it. */
  format: JsonObject | null;
  promptTokens: number;
}

const ERROR_TYPES: Readonly<Record<number, string>> = {
  400: "invalid_request_error",
  401: "authentication_error",
  403: "permission_error",
  404: "not_found_error",
  413: "request_too_large",
  429: "rate_limit_error",
  500: "api_error",
  529: "overloaded_error",
};
const STOP_REASONS: Readonly<Record<FinishReason, string>> = { stop: "end_turn", length: "max_tokens" };

export function errorResult(status: number, message: string, type?: string): BufferedResult {
  const errorType = type ?? ERROR_TYPES[status] ?? (status >= 500 ? "api_error" : "invalid_request_error");
  return jsonResult(status, { type: "error", error: { type: errorType, message } });
}

/** Anthropic's own error body for a status, used for faults that give no body. */
export function defaultErrorResult(status: number): BufferedResult {
  const messages: Readonly<Record<number, string>> = {
    429: "Number of requests has exceeded your rate limit.",
    529: "Overloaded",
  };
  return errorResult(
    status,
    messages[status] ?? (status >= 500 ? "Internal server error" : `Request failed with status ${status}.`),
  );
}

export function keyErrorResult(): BufferedResult {
  return errorResult(401, "invalid x-api-key", "authentication_error");
}

function invalid(message: string): BufferedResult {
  return errorResult(400, message, "invalid_request_error");
}

function sse(type: string, data: unknown): string {
  return `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** Custom tools ({name, input_schema}); server tools (a `type` other than "custom") are never called. */
function parseTools(tools: unknown): ToolDef[] | BufferedResult {
  if (tools === undefined || tools === null) return [];
  if (!Array.isArray(tools)) return invalid("tools: Input should be a valid list");
  const list: readonly unknown[] = tools;
  const out: ToolDef[] = [];
  for (const [i, tool] of list.entries()) {
    const type = prop(tool, "type");
    if (type !== undefined && type !== null && type !== "custom") continue;
    const name = prop(tool, "name");
    if (typeof name !== "string" || name === "") return invalid(`tools.${i}.custom.name: Field required`);
    const schema = prop(tool, "input_schema");
    if (!isJsonObject(schema)) return invalid(`tools.${i}.custom.input_schema: Field required`);
    out.push({ name, schema });
  }
  return out;
}

function parseToolChoice(
  choice: unknown,
  tools: readonly ToolDef[],
  given: boolean,
): { choice: string; forced: string | null } | BufferedResult {
  if (choice === undefined || choice === null) return { choice: "auto", forced: null };
  const type = prop(choice, "type");
  if (type !== "auto" && type !== "any" && type !== "tool" && type !== "none") {
    return invalid("tool_choice: Input tag does not match any of the expected tags: 'auto', 'any', 'tool', 'none'");
  }
  if (!given && type !== "none" && type !== "auto")
    return invalid("tool_choice may only be specified while providing tools.");
  if (type !== "tool") return { choice: type, forced: null };
  const name = prop(choice, "name");
  if (typeof name !== "string") return invalid("tool_choice.tool.name: Field required");
  if (!tools.some((t) => t.name === name)) return invalid(`tool_choice: tool '${name}' not found in tools`);
  return { choice: type, forced: name };
}

/** Checks the body; `needsMaxTokens` is false for count_tokens. */
function parse(call: Call, needsMaxTokens: boolean): Parsed | BufferedResult {
  if (!call.headers["anthropic-version"]) return invalid("anthropic-version: header is required");
  const body = call.json;
  if (call.parseError || !isJsonObject(body)) {
    return invalid("There was an error parsing the body of your request.");
  }
  if (typeof body.model !== "string" || body.model === "") return invalid("model: Field required");
  if (needsMaxTokens) {
    if (body.max_tokens === undefined) return invalid("max_tokens: Field required");
    if (typeof body.max_tokens !== "number" || !Number.isInteger(body.max_tokens) || body.max_tokens < 1) {
      return invalid("max_tokens: Input should be greater than or equal to 1");
    }
  }
  if (!Array.isArray(body.messages)) return invalid("messages: Field required");
  if (body.messages.length === 0) return invalid("messages: at least one message is required");
  const checked = checkRequest(body, call.headers["anthropic-beta"], body.model);
  if ("error" in checked) return invalid(checked.error);
  const tools = parseTools(body.tools);
  if (!Array.isArray(tools)) return tools;
  const choice = parseToolChoice(body.tool_choice, tools, tools.length > 0);
  if ("status" in choice) return choice;
  const messages: unknown[] = body.messages;
  const normalized = normalizeMessages(messages, body.system);
  return {
    body,
    model: body.model,
    messages,
    normalized,
    tools,
    ...choice,
    format: checked.format,
    promptTokens: promptTokens(normalized) + toolsPromptTokens(body.tools),
  };
}

/** Whether the last user turn hands back tool results (then the model answers in words). */
function answersToolResult(messages: readonly unknown[]): boolean {
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i];
    if (prop(m, "role") !== "user") continue;
    const content = prop(m, "content");
    return Array.isArray(content) && content.some((block) => prop(block, "type") === "tool_result");
  }
  return false;
}

function decideAnswer(p: Parsed): Answer {
  const first = p.choice === "auto" ? autoTool(p.tools, p.normalized) : p.tools[0];
  if (first !== undefined && p.choice !== "none" && !answersToolResult(p.messages)) {
    const tool = p.tools.find((t) => t.name === p.forced) ?? first;
    const json = toolArguments(tool, p.model, p.normalized, p.body.max_tokens);
    return { kind: "tool", id: `toolu_01${randomBase62(22)}`, name: tool.name, json };
  }
  if (p.format !== null) {
    const value = sampleSchema(p.format, p.model, p.normalized, "output_config.format");
    return { kind: "json", json: jsonAnswer(value, p.body.max_tokens) };
  }
  return { kind: "text", completion: complete(p.normalized, p.model, p.body.max_tokens) };
}

function outputTokens(answer: Answer): number {
  return answer.kind === "text" ? answer.completion.completionTokens : answer.json.tokens;
}

function stopReason(answer: Answer): string {
  if (answer.kind === "text") return STOP_REASONS[answer.completion.finishReason];
  if (answer.json.finishReason === "length") return "max_tokens";
  return answer.kind === "tool" ? "tool_use" : "end_turn";
}

/** The content block as a finished message carries it. A cut tool call keeps input {} (UNCONFIRMED). */
function contentBlock(answer: Answer): JsonObject {
  if (answer.kind === "text") return { type: "text", text: answer.completion.text };
  if (answer.kind === "json") return { type: "text", text: answer.json.text };
  const input = answer.json.finishReason === "length" ? {} : answer.json.value;
  return { type: "tool_use", id: answer.id, name: answer.name, input };
}

function usageBody(input: number, cache: CacheUsage, output: number, searches: Search[] | null): JsonObject {
  return {
    input_tokens: input,
    cache_creation_input_tokens: cache.creation,
    cache_read_input_tokens: cache.read,
    cache_creation: { ephemeral_5m_input_tokens: cache.creation5m, ephemeral_1h_input_tokens: cache.creation1h },
    output_tokens: output,
    ...(searches === null ? {} : { server_tool_use: { web_search_requests: searches.length } }),
    service_tier: "standard",
  };
}

/** The web searches this request runs: null without the web search tool. */
function plannedSearchBlocks(p: Parsed): Search[] | null {
  const tool = Array.isArray(p.body.tools)
    ? p.body.tools.find((t) => String(prop(t, "type")).startsWith("web_search_"))
    : undefined;
  if (tool === undefined || p.choice === "none") return null;
  const maxUses = prop(tool, "max_uses");
  const count = plannedSearches(p.normalized, typeof maxUses === "number" ? maxUses : undefined);
  return Array.from({ length: count }, (_, i) => ({
    id: `srvtoolu_01${randomBase62(22)}`,
    query: randomWords(requestRng(p.model, p.normalized, `search:${i}`), 3),
  }));
}

/** A search as its two blocks: the call and its results. */
function searchBlocks({ id, query }: Search): [JsonObject, JsonObject] {
  const slug = query.replaceAll(" ", "-");
  const result = {
    type: "web_search_result",
    url: `https://example.com/${slug}`,
    title: query,
    encrypted_content: randomBase62(64),
    page_age: null,
  };
  return [
    { type: "server_tool_use", id, name: "web_search", input: { query } },
    { type: "web_search_tool_result", tool_use_id: id, content: [result] },
  ];
}

function streamEvents(
  message: MessageHead,
  answer: Answer,
  input: number,
  cache: CacheUsage,
  searches: Search[] | null,
): string[] {
  const start = {
    ...message,
    content: [],
    stop_reason: null,
    stop_sequence: null,
    usage: usageBody(input, cache, 1, null),
  };
  const startBlock =
    answer.kind === "tool"
      ? { type: "tool_use", id: answer.id, name: answer.name, input: {} }
      : { type: "text", text: "" };
  const out = [sse("message_start", { type: "message_start", message: start })];
  const block = (index: number, content_block: JsonObject) =>
    sse("content_block_start", { type: "content_block_start", index, content_block });
  const stop = (index: number) => sse("content_block_stop", { type: "content_block_stop", index });
  let index = 0;
  for (const search of searches ?? []) {
    const [call, results] = searchBlocks(search);
    out.push(block(index, { ...call, input: {} }));
    const partial_json = JSON.stringify(call.input);
    out.push(
      sse("content_block_delta", {
        type: "content_block_delta",
        index,
        delta: { type: "input_json_delta", partial_json },
      }),
    );
    out.push(stop(index++));
    out.push(block(index, results), stop(index++));
  }
  out.push(block(index, startBlock));
  if (index === 0) out.push(sse("ping", { type: "ping" }));
  const at = index;
  const delta = (d: JsonObject) => sse("content_block_delta", { type: "content_block_delta", index: at, delta: d });
  if (answer.kind === "text") {
    for (const text of pieces(answer.completion)) out.push(delta({ type: "text_delta", text }));
  } else if (answer.kind === "json") {
    for (const text of jsonPieces(answer.json.text)) out.push(delta({ type: "text_delta", text }));
  } else {
    // Anthropic's first input_json_delta is usually empty (cf-contract-2 2.3).
    for (const partial_json of ["", ...jsonPieces(answer.json.text)]) {
      out.push(delta({ type: "input_json_delta", partial_json }));
    }
  }
  out.push(stop(at));
  // cumulative: with server tools, the whole usage again, now with their requests
  const usage =
    searches === null
      ? { output_tokens: outputTokens(answer) }
      : {
          ...usageBody(input, cache, outputTokens(answer), searches),
          cache_creation: undefined,
          service_tier: undefined,
        };
  out.push(
    sse("message_delta", {
      type: "message_delta",
      delta: { stop_reason: stopReason(answer), stop_sequence: null },
      usage,
    }),
  );
  out.push(sse("message_stop", { type: "message_stop" }));
  return out;
}

/** POST /v1/messages. */
export function messages(call: Call, ctx: GenerateContext): Result {
  const p = parse(call, true);
  if ("status" in p) return p;
  const answer = decideAnswer(p);
  const points = breakpoints(ctx.gatewayId, p.model, p.body.tools, p.body.system, p.messages);
  const cache = applyPromptCache(ctx.promptCache, points);
  const searches = plannedSearchBlocks(p);
  const read = (searches?.length ?? 0) * SEARCH_INPUT_TOKENS;
  const input = p.promptTokens - cache.read - cache.creation + read;
  const output = outputTokens(answer);
  const message: MessageHead = { id: `msg_${randomId(24)}`, type: "message", role: "assistant", model: p.model };
  const result: Result =
    p.body.stream === true
      ? sseResult(streamEvents(message, answer, input, cache, searches))
      : jsonResult(200, {
          ...message,
          content: [...(searches ?? []).flatMap(searchBlocks), contentBlock(answer)],
          stop_reason: stopReason(answer),
          stop_sequence: null,
          usage: usageBody(input, cache, output, searches),
        });
  const prompt = p.promptTokens + read;
  result.usage = { prompt_tokens: prompt, completion_tokens: output, total_tokens: prompt + output };
  return result;
}

/** POST /v1/messages/count_tokens: the prompt's input tokens (tools, system, messages), no caching. */
export function countTokens(call: Call): Result {
  const p = parse(call, false);
  if ("status" in p) return p;
  const result = jsonResult(200, { input_tokens: p.promptTokens });
  result.usage = null;
  return result;
}
