// Workers AI's text-generation output → an OpenAI chat completion: `response` is the content
// (an object when the model answered in JSON mode), `tool_calls` ({name, arguments} without
// ids) the tool calls, `usage` the usage. Models that already answer in OpenAI's shape
// (`choices`) pass through as they came.

import { chatCompletion } from "../chat-shapes";
import { chatOutput } from "../openai/output";
import type { Answer } from "../types";
import { openaiUsage, readUsage } from "./usage";

export interface WorkersAIToolCall {
  id?: unknown;
  name?: unknown;
  arguments?: unknown;
}

export interface WorkersAIOutput {
  response?: unknown;
  tool_calls?: WorkersAIToolCall[];
  usage?: unknown;
  choices?: unknown;
}

/** OpenAI's tool call for Workers AI's; the legacy shape has no id, so one is made. */
export function openaiToolCall(call: WorkersAIToolCall, index: number, requestId: string) {
  const args = call.arguments;
  return {
    id: typeof call.id === "string" ? call.id : `call_${requestId.replaceAll("-", "").slice(0, 16)}_${index}`,
    type: "function",
    function: {
      name: String(call.name ?? ""),
      arguments: typeof args === "string" ? args : JSON.stringify(args ?? {}),
    },
  };
}

export function contentOf(response: unknown): string {
  if (response === undefined || response === null) return "";
  return typeof response === "string" ? response : JSON.stringify(response);
}

/** What the model produced in a result or a stream event: its response and tool calls' arguments. */
export function outputOf(output: WorkersAIOutput | null | undefined): string {
  if (output === null || typeof output !== "object") return "";
  const calls = Array.isArray(output.tool_calls) ? output.tool_calls : [];
  const args = calls.map(({ arguments: a }) => (typeof a === "string" ? a : JSON.stringify(a ?? {})));
  return contentOf(output.response) + args.join("");
}

export function completion(raw: string, { requestId, model }: { requestId: string; model: string }): Answer {
  let output: WorkersAIOutput;
  try {
    output = JSON.parse(raw) as WorkersAIOutput;
  } catch {
    return { text: raw, said: raw, usage: null }; // not JSON: passed on as it came; the cost is estimated
  }
  const usage = readUsage(output?.usage);
  if (output === null || typeof output !== "object") return { text: raw, said: "", usage };
  if (Array.isArray(output.choices)) return { text: raw, said: chatOutput(output), usage };
  const toolCalls = (Array.isArray(output.tool_calls) ? output.tool_calls : []).map((call, i) =>
    openaiToolCall(call, i, requestId),
  );
  const content = contentOf(output.response);
  const body = chatCompletion({
    id: `chatcmpl-${requestId}`,
    model,
    content: content === "" && toolCalls.length > 0 ? null : content,
    toolCalls,
    finish: toolCalls.length > 0 ? "tool_calls" : "stop",
    usage: usage ? openaiUsage(usage) : null,
  });
  return { text: JSON.stringify(body), said: outputOf(output), usage };
}
