// What an OpenAI model produced, read from an answer or a stream event (parsed JSON, never a
// pattern over its text): content, refusals, tool-call arguments and reasoning summaries. When
// no usable usage comes back, the output is estimated from these words, the same whether they
// came whole or streamed (issue 22: an answer was estimated from its whole JSON body).

import type { Extras } from "../../pricing/extras";

type Json = Record<string, unknown>;

function asObject(value: unknown): Json | null {
  return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Json) : null;
}

function text(value: unknown): string {
  return typeof value === "string" ? value : "";
}

function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

/** A chat message or a stream's delta: content (a string or text parts), refusal, tool calls. */
function chatMessage(message: unknown): string {
  const m = asObject(message);
  if (!m) return "";
  let out = typeof m.content === "string" ? m.content : "";
  for (const part of list(m.content)) out += text(asObject(part)?.text);
  out += text(m.refusal);
  for (const call of list(m.tool_calls)) out += text(asObject(asObject(call)?.function)?.arguments);
  out += text(asObject(m.function_call)?.arguments);
  return out;
}

/** A chat completion's output, every choice. */
export function chatOutput(completion: unknown): string {
  return list(asObject(completion)?.choices)
    .map((choice) => chatMessage(asObject(choice)?.message))
    .join("");
}

/** What one chat.completion.chunk adds, every choice. */
export function chatChunkOutput(chunk: unknown): string {
  return list(asObject(chunk)?.choices)
    .map((choice) => chatMessage(asObject(choice)?.delta))
    .join("");
}

/** One output item of a Responses answer. */
function responsesItem(item: unknown): string {
  const i = asObject(item);
  if (!i) return "";
  let out = text(i.arguments) + text(i.input);
  for (const part of list(i.content)) out += text(asObject(part)?.text) + text(asObject(part)?.refusal);
  for (const part of list(i.summary)) out += text(asObject(part)?.text);
  return out;
}

/** A Responses answer's output: messages, function and custom tool calls, reasoning summaries. */
export function responsesOutput(response: unknown): string {
  return list(asObject(response)?.output).map(responsesItem).join("");
}

// The stream events that add output, each with its piece in `delta`.
export const DELTAS = new Set([
  "response.output_text.delta",
  "response.refusal.delta",
  "response.function_call_arguments.delta",
  "response.custom_tool_call_input.delta",
  "response.reasoning_summary_text.delta",
]);

/** What one Responses stream event adds. */
export function responsesEventOutput(event: unknown): string {
  const e = asObject(event);
  return e && DELTAS.has(String(e.type)) ? text(e.delta) : "";
}

// The Responses API's built-in tool calls as output items, by the tool they bill (a code
// interpreter by the container it ran in).
const TOOL_ITEMS: Readonly<Record<string, string>> = {
  web_search_call: "web_search",
  file_search_call: "file_search",
  code_interpreter_call: "code_interpreter",
  image_generation_call: "image_generation",
};

/** What a Responses answer reports beyond tokens: built-in tool calls, the tier that served it. */
export function responsesExtras(response: unknown): Extras {
  const r = asObject(response);
  const tools: Record<string, number> = {};
  const containers = new Set<string>();
  for (const item of list(r?.output)) {
    const i = asObject(item);
    const name = TOOL_ITEMS[String(i?.type)];
    if (!name) continue;
    if (name === "code_interpreter") {
      containers.add(String(i?.container_id ?? ""));
      tools[name] = containers.size;
    } else {
      tools[name] = (tools[name] ?? 0) + 1;
    }
  }
  return { tools, tier: typeof r?.service_tier === "string" ? r.service_tier : null };
}

/** The tier a chat completion (or chunk) says served it. */
export function chatTier(body: unknown): string | null {
  const tier = asObject(body)?.service_tier;
  return typeof tier === "string" ? tier : null;
}
