// An OpenAI chat completion (what every provider module answers) → the Anthropic message an
// Anthropic client expects: the text as a text block, each tool call a tool_use block (its
// arguments parsed; a call cut short keeps `{}`), the finish reason as stop_reason, and the
// usage in Anthropic's terms (input_tokens without the cache; reads and writes apart).

import { HttpError } from "../../lib/errors";
import type { Answer } from "../../providers";

type Json = Record<string, unknown>;

export const STOP_REASONS: Record<string, string> = {
  stop: "end_turn",
  length: "max_tokens",
  tool_calls: "tool_use",
  function_call: "tool_use",
  content_filter: "refusal",
};

export interface ChatUsage {
  prompt_tokens?: number;
  completion_tokens?: number;
  prompt_tokens_details?: { cached_tokens?: number | null; cache_write_tokens?: number | null } | null;
}

/** OpenAI's usage → Anthropic's (input_tokens excludes cached and written input). */
export function anthropicUsage(usage: ChatUsage | null | undefined): Json {
  const read = usage?.prompt_tokens_details?.cached_tokens ?? 0;
  const written = usage?.prompt_tokens_details?.cache_write_tokens ?? 0;
  return {
    input_tokens: Math.max(0, (usage?.prompt_tokens ?? 0) - read - written),
    cache_creation_input_tokens: written,
    cache_read_input_tokens: read,
    output_tokens: usage?.completion_tokens ?? 0,
  };
}

/** A tool call's arguments as Anthropic's `input` (an object; unparsable or cut: `{}`). */
export function inputOf(args: unknown): Json {
  try {
    const value = JSON.parse(typeof args === "string" ? args : "{}") as unknown;
    return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Json) : {};
  } catch {
    return {};
  }
}

/** `msg_…` from the completion's id (the client sees one id per answer, as Anthropic's). */
export function messageId(id: unknown): string {
  const tail = typeof id === "string" ? id.replace(/^chatcmpl-/, "").replace(/[^A-Za-z0-9]/g, "") : "";
  return `msg_${tail || crypto.randomUUID().replaceAll("-", "")}`;
}

interface Completion {
  id?: unknown;
  choices?: {
    message?: {
      content?: unknown;
      tool_calls?: { id?: unknown; function?: { name?: unknown; arguments?: unknown } }[];
    };
    finish_reason?: unknown;
  }[];
  usage?: ChatUsage;
}

/** The completion's text → the message's text; `model` is the id the client asked for. */
export function messageOf(completionText: string, model: string): string {
  const completion = JSON.parse(completionText) as Completion;
  const choice = completion.choices?.[0];
  const text = typeof choice?.message?.content === "string" ? choice.message.content : "";
  const content: Json[] = text === "" ? [] : [{ type: "text", text }];
  for (const call of choice?.message?.tool_calls ?? []) {
    content.push({
      type: "tool_use",
      id: call.id,
      name: call.function?.name,
      input: inputOf(call.function?.arguments),
    });
  }
  const finish = typeof choice?.finish_reason === "string" ? choice.finish_reason : "stop";
  return JSON.stringify({
    id: messageId(completion.id),
    type: "message",
    role: "assistant",
    model,
    content,
    stop_reason: STOP_REASONS[finish] ?? "end_turn",
    stop_sequence: null,
    usage: anthropicUsage(completion.usage),
  });
}

/** A provider's answer (an OpenAI completion) as the Messages route gives it. */
export function bridgedAnswer(answer: Answer, model: string): Answer {
  try {
    return { ...answer, text: messageOf(answer.text, model), contentType: "application/json" };
  } catch {
    throw new HttpError(502, "The upstream answer was not valid JSON.", { code: "upstream_invalid_response" });
  }
}
