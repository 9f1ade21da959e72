// The Responses API's SSE stream (providers/openai-responses.ts), in OpenAI's order:
//   response.created (status in_progress, output [], usage null) -> response.in_progress ->
//   per output item: response.output_item.added (status in_progress) ->
//     reasoning: nothing more (summary stays []);
//     message: response.content_part.added -> response.output_text.delta x n ->
//       response.output_text.done -> response.content_part.done;
//     function_call: response.function_call_arguments.delta x n -> ...arguments.done;
//     web_search_call: response.web_search_call.in_progress -> .searching -> .completed;
//     code_interpreter_call: response.code_interpreter_call.in_progress ->
//       response.code_interpreter_call_code.delta x n -> ..._code.done -> .interpreting -> .completed;
//   -> response.output_item.done (the finished item) ->
//   response.completed or response.incomplete (the full response, with usage).
// Every event is `event: <type>` + `data: {type, sequence_number, ...}`, sequence_number
// counting from 0; no `data: [DONE]`. Delta events carry `obfuscation` (random padding, as
// OpenAI adds by default) unless stream_options.include_obfuscation is false.
// A stream fault (errorAfterChunks) ends the stream after k events with `event: error`
// {type: "error", code, message, param, sequence_number: k}, or with `response.failed` (the
// response, status "failed", error {code, message}, usage null, output = the items finished
// before the failure).
import { randomBase62 } from "../ids";
import type { JsonObject, StreamErrorEvent } from "../types";

/** One output item as streamed: its finished form, its in-progress form and its text pieces. */
export interface StreamItem {
  item: JsonObject;
  added: JsonObject;
  pieces: string[];
}

export interface StreamPlan {
  /** The response as response.created shows it (status in_progress). */
  inProgress: JsonObject;
  /** The terminal response (completed or incomplete, with usage). */
  final: JsonObject;
  items: StreamItem[];
  obfuscate: boolean;
}

const OBFUSCATION_CHARS = 16;
const FAILURE_MESSAGE =
  "An error occurred while processing your request. You can retry your request, or contact us through our help center at help.openai.com if the error persists.";

function sse(type: string, sequence: number, data: JsonObject): string {
  return `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: sequence, ...data })}\n\n`;
}

/** The stream's events, and where each item's output_item.done sits (for response.failed). */
function events(plan: StreamPlan): { events: [string, JsonObject][]; doneAt: number[] } {
  const out: [string, JsonObject][] = [
    ["response.created", { response: plan.inProgress }],
    ["response.in_progress", { response: plan.inProgress }],
  ];
  const doneAt: number[] = [];
  const pad = (delta: string) =>
    plan.obfuscate ? { obfuscation: randomBase62(Math.max(1, OBFUSCATION_CHARS - delta.length)) } : {};
  for (const [output_index, { item, added, pieces }] of plan.items.entries()) {
    const item_id = item.id;
    out.push(["response.output_item.added", { output_index, item: added }]);
    if (item.type === "message") {
      const text = pieces.join("");
      const where = { item_id, output_index, content_index: 0 };
      const part = (t: string) => ({ type: "output_text", annotations: [], logprobs: [], text: t });
      out.push(["response.content_part.added", { ...where, part: part("") }]);
      for (const delta of pieces)
        out.push(["response.output_text.delta", { ...where, delta, logprobs: [], ...pad(delta) }]);
      out.push(["response.output_text.done", { ...where, text, logprobs: [] }]);
      out.push(["response.content_part.done", { ...where, part: part(text) }]);
    } else if (item.type === "function_call") {
      for (const delta of pieces) {
        out.push(["response.function_call_arguments.delta", { item_id, output_index, delta, ...pad(delta) }]);
      }
      out.push(["response.function_call_arguments.done", { item_id, output_index, arguments: pieces.join("") }]);
    } else if (item.type === "code_interpreter_call") {
      out.push(["response.code_interpreter_call.in_progress", { output_index, item_id }]);
      for (const delta of pieces)
        out.push(["response.code_interpreter_call_code.delta", { output_index, item_id, delta }]);
      out.push(["response.code_interpreter_call_code.done", { output_index, item_id, code: pieces.join("") }]);
      out.push(["response.code_interpreter_call.interpreting", { output_index, item_id }]);
      out.push(["response.code_interpreter_call.completed", { output_index, item_id }]);
    } else if (item.type === "web_search_call") {
      for (const phase of ["in_progress", "searching", "completed"]) {
        out.push([`response.web_search_call.${phase}`, { output_index, item_id }]);
      }
    }
    doneAt.push(out.length);
    out.push(["response.output_item.done", { output_index, item }]);
  }
  const terminal = plan.final.status === "incomplete" ? "response.incomplete" : "response.completed";
  out.push([terminal, { response: plan.final }]);
  return { events: out, doneAt };
}

/** The SSE chunks (one per event) and the in-band failure a stream fault puts after `delivered` of them. */
export function streamChunks(plan: StreamPlan): {
  chunks: string[];
  failStream: (delivered: number, event: StreamErrorEvent) => string[];
} {
  const { events: list, doneAt } = events(plan);
  const chunks = list.map(([type, data], i) => sse(type, i, data));
  const failStream = (delivered: number, event: StreamErrorEvent): string[] => {
    if (event === "error") {
      return [sse("error", delivered, { code: "server_error", message: FAILURE_MESSAGE, param: null })];
    }
    const output = plan.items.filter((_, i) => (doneAt[i] ?? Number.POSITIVE_INFINITY) < delivered).map((s) => s.item);
    const response = {
      ...plan.inProgress,
      status: "failed",
      error: { code: "server_error", message: FAILURE_MESSAGE },
      output,
      usage: null,
    };
    return [sse("response.failed", delivered, { response })];
  };
  return { chunks, failStream };
}
