// A Gemini response → an OpenAI chat completion: the first candidate's text parts are the
// content (thoughts are not: they have no OpenAI field), its function calls the tool calls (their
// thought signatures in the ids, request.ts), finishReason the finish_reason, usageMetadata every
// token kind. A prompt Gemini blocked (no candidate, promptFeedback.blockReason) is a
// content_filter answer with no content, as OpenAI reports a filtered one.

import { chatCompletion } from "../chat-shapes";
import type { Answer } from "../types";
import { type Candidate, type Part, partsOf, partsOutput } from "./output";
import { joinCallId } from "./request";
import { type GeminiUsage, openaiUsage, readUsage } from "./usage";

const FILTERED = new Set([
  "SAFETY",
  "RECITATION",
  "BLOCKLIST",
  "PROHIBITED_CONTENT",
  "SPII",
  "IMAGE_SAFETY",
  "IMAGE_PROHIBITED_CONTENT",
]);

export function finishReason(reason: unknown, calls: boolean): string {
  if (reason === "MAX_TOKENS") return "length";
  if (typeof reason === "string" && FILTERED.has(reason)) return "content_filter";
  return calls ? "tool_calls" : "stop";
}

/** OpenAI tool calls for the function calls among `parts`, numbered from `first`. */
export function toolCalls(parts: readonly Part[], responseId: string, first = 0) {
  return parts
    .filter((p) => p.functionCall)
    .map((p, i) => {
      const own = typeof p.functionCall?.id === "string" ? p.functionCall.id : `call_${responseId}_${first + i}`;
      return {
        id: joinCallId(own, p.thoughtSignature),
        type: "function",
        function: { name: String(p.functionCall?.name ?? ""), arguments: JSON.stringify(p.functionCall?.args ?? {}) },
      };
    });
}

/** The parts' text the client reads (thoughts left out). */
export function visibleText(parts: readonly Part[]): string {
  return parts
    .filter((p) => typeof p.text === "string" && p.thought !== true)
    .map((p) => p.text)
    .join("");
}

interface Response {
  candidates?: Candidate[];
  promptFeedback?: { blockReason?: unknown };
  usageMetadata?: GeminiUsage;
  modelVersion?: string;
  responseId?: string;
}

export function completion(text: string): Answer {
  let response: Response;
  try {
    response = JSON.parse(text) as Response;
  } catch {
    return { text, said: text, usage: null }; // not JSON: passed on as it came; the cost is estimated
  }
  const parts = partsOf(response);
  const responseId = response.responseId ?? "";
  const calls = toolCalls(parts, responseId);
  const blocked = response.promptFeedback?.blockReason !== undefined && !response.candidates?.length;
  const content = visibleText(parts);
  const usage = readUsage(response.usageMetadata);
  const body = chatCompletion({
    id: `chatcmpl-${responseId}`,
    model: response.modelVersion ?? "",
    content: content === "" && calls.length > 0 ? null : content,
    toolCalls: calls,
    finish: blocked ? "content_filter" : finishReason(response.candidates?.[0]?.finishReason, calls.length > 0),
    usage: usage ? openaiUsage(usage, response.usageMetadata) : null,
  });
  return { text: JSON.stringify(body), said: partsOutput(parts), usage };
}
