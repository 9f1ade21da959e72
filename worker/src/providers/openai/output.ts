// What an OpenAI model produced, read from an answer or a stream event (parsed JSON, never a
// pattern over its text): content, refusals, tool-call arguments and reasoning summaries. When
// no usable usage comes back, the output is estimated from these words, the same whether they
// came whole or streamed (issue 22: an answer was estimated from its whole JSON body).

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
const DELTAS = new Set([
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

/** Whether a Responses stream event of this type adds output (parse it only then). */
export function addsOutput(type: string): boolean {
  return DELTAS.has(type);
}
