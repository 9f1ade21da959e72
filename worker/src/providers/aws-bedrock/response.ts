// A Bedrock Converse answer → an OpenAI chat completion: text blocks are the content, toolUse
// blocks the tool calls (or, for a structured-output request, the JSON answer), stopReason the
// finish_reason, and the usage every token kind. Reasoning blocks have no OpenAI field; they
// are output all the same (counted in outputTokens).

import { chatCompletion, openaiUsage } from "../chat-shapes";
import type { Answer } from "../types";
import { JSON_TOOL } from "./request";
import { type BedrockUsage, readUsage } from "./usage";

const FINISH: Record<string, string> = {
  end_turn: "stop",
  stop_sequence: "stop",
  tool_use: "tool_calls",
  max_tokens: "length",
  model_context_window_exceeded: "length",
  guardrail_intervened: "content_filter",
  content_filtered: "content_filter",
};

export function finishReason(stopReason: unknown, jsonAnswer: boolean): string {
  if (jsonAnswer && stopReason === "tool_use") return "stop";
  return (typeof stopReason === "string" && FINISH[stopReason]) || "stop";
}

interface Block {
  text?: string;
  toolUse?: { toolUseId?: string; name?: string; input?: unknown };
  reasoningContent?: { reasoningText?: { text?: string } };
}

interface ConverseAnswer {
  output?: { message?: { content?: Block[] } };
  stopReason?: unknown;
  usage?: BedrockUsage;
}

/** What the model produced (text, reasoning, tool inputs): what an estimate counts. */
export function blockOutput(block: Block): string {
  if (block.toolUse) return JSON.stringify(block.toolUse.input ?? {});
  return (block.text ?? "") + (block.reasoningContent?.reasoningText?.text ?? "");
}

export function completion(text: string, model: string, jsonAnswer: boolean): Answer {
  let answer: ConverseAnswer;
  try {
    answer = JSON.parse(text) as ConverseAnswer;
  } catch {
    return { text, said: text, usage: null }; // not JSON: passed on as it came; the cost is estimated
  }
  const blocks = Array.isArray(answer.output?.message?.content) ? answer.output.message.content : [];
  const parts = blocks.filter((b) => typeof b.text === "string").map((b) => b.text ?? "");
  const uses = blocks.filter((b) => b.toolUse).map((b) => b.toolUse ?? {});
  const json = jsonAnswer ? uses.find((u) => u.name === JSON_TOOL) : undefined;
  const toolCalls = jsonAnswer
    ? []
    : uses.map((u) => ({
        id: u.toolUseId,
        type: "function",
        function: { name: u.name, arguments: JSON.stringify(u.input ?? {}) },
      }));
  const content = json
    ? JSON.stringify(json.input ?? {})
    : parts.length > 0
      ? parts.join("")
      : toolCalls.length > 0
        ? null
        : "";
  const usage = readUsage(answer.usage);
  const body = chatCompletion({
    id: `chatcmpl-${crypto.randomUUID().replaceAll("-", "")}`,
    model,
    content,
    toolCalls,
    finish: finishReason(answer.stopReason, jsonAnswer),
    usage: usage ? openaiUsage(usage) : null,
  });
  return { text: JSON.stringify(body), said: blocks.map(blockOutput).join(""), usage };
}
