// An Anthropic message → an OpenAI chat completion (cf-contract-2 §2.7): text blocks are the
// content, tool_use blocks the tool calls (or, for a structured-output request, the JSON
// answer), stop_reason the finish_reason, and the usage every token kind.

import { chatCompletion, openaiUsage } from "../chat-shapes";
import type { Answer } from "../types";
import { messageOutput } from "./output";
import { JSON_TOOL } from "./request";
import { type AnthropicUsage, readExtras, readUsage } from "./usage";

// Portkey's map, plus refusal and the context window (not in it).
const FINISH: Record<string, string> = {
  end_turn: "stop",
  stop_sequence: "stop",
  pause_turn: "stop",
  tool_use: "tool_calls",
  max_tokens: "length",
  model_context_window_exceeded: "length",
  refusal: "content_filter",
};

export function finishReason(stopReason: unknown, jsonAnswer: boolean): string {
  if (jsonAnswer && stopReason === "tool_use") return "stop";
  return (typeof stopReason === "string" && FINISH[stopReason]) || "stop";
}

interface Message {
  id?: string;
  model?: string;
  content?: { type?: string; text?: string; id?: string; name?: string; input?: unknown }[];
  stop_reason?: unknown;
  usage?: AnthropicUsage;
}

export function completion(text: string, jsonAnswer: boolean): Answer {
  let message: Message;
  try {
    message = JSON.parse(text) as Message;
  } catch {
    return { text, said: text, usage: null }; // not JSON: passed on as it came; the cost is estimated
  }
  const blocks = Array.isArray(message.content) ? message.content : [];
  const parts = blocks.filter((b) => b.type === "text").map((b) => b.text ?? "");
  const calls = blocks.filter((b) => b.type === "tool_use");
  const answer = jsonAnswer ? calls.find((b) => b.name === JSON_TOOL) : undefined;
  const toolCalls = jsonAnswer
    ? []
    : calls.map((b) => ({
        id: b.id,
        type: "function",
        function: { name: b.name, arguments: JSON.stringify(b.input ?? {}) },
      }));
  const content = answer
    ? JSON.stringify(answer.input ?? {})
    : parts.length > 0
      ? parts.join("")
      : toolCalls.length
        ? null
        : "";
  const usage = readUsage(message.usage);
  const body = chatCompletion({
    id: message.id ?? "",
    model: message.model ?? "",
    content,
    toolCalls,
    finish: finishReason(message.stop_reason, jsonAnswer),
    usage: usage ? openaiUsage(usage) : null,
  });
  return { text: JSON.stringify(body), said: messageOutput(message), usage, extras: readExtras(message.usage) };
}
