// What a translated answer looks like to an OpenAI chat client: the usage object (every token
// kind, cache writes included) and the chunks of a stream, shared by the providers that
// translate (Anthropic, Bedrock).

import type { TokenUsage } from "./types";

/** The counts as OpenAI reports them, with the cache writes OpenAI has no field for. */
export function openaiUsage(tokens: TokenUsage) {
  return {
    prompt_tokens: tokens.promptTokens,
    completion_tokens: tokens.completionTokens,
    total_tokens: tokens.promptTokens + tokens.completionTokens,
    prompt_tokens_details: { cached_tokens: tokens.cachedTokens, cache_write_tokens: tokens.cacheWriteTokens },
    completion_tokens_details: { reasoning_tokens: 0 },
  };
}

/** The SSE events of one translated stream: a delta of its one choice, or its usage. */
export function chatChunks(envelope: () => { id: string; model: string }) {
  const created = Math.floor(Date.now() / 1000);
  const event = (body: Record<string, unknown>) => {
    const { id, model } = envelope();
    return `data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model, ...body })}\n\n`;
  };
  return {
    delta: (delta: Record<string, unknown>, finish: string | null = null): string =>
      event({ choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] }),
    usage: (tokens: TokenUsage): string => event({ choices: [], usage: openaiUsage(tokens) }),
  };
}

/**
 * A one-choice OpenAI chat completion, as a translating provider answers: `content` as given
 * (null when only tool calls came), the tool calls when there are any, usage when reported.
 */
export function chatCompletion(answer: {
  id: string;
  model: string;
  content: string | null;
  toolCalls: readonly unknown[];
  finish: string;
  usage?: Record<string, unknown> | null;
}): Record<string, unknown> {
  const { id, model, content, toolCalls, finish, usage } = answer;
  return {
    id,
    object: "chat.completion",
    created: Math.floor(Date.now() / 1000),
    model,
    choices: [
      {
        index: 0,
        message: {
          role: "assistant",
          content,
          refusal: null,
          ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}),
        },
        logprobs: null,
        finish_reason: finish,
      },
    ],
    ...(usage ? { usage } : {}),
  };
}
