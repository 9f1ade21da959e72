// The OpenAI chat request upstream: the client's body with the provider's model id, a bounded
// output (so the worst case reserved before sending is a real bound), and usage on streams.

import type { ChatCall } from "../types";

/** `maxTokensField`: OpenAI's reasoning models refuse max_tokens; compatible providers want it. */
export function chatRequest(
  call: ChatCall,
  maxTokensField: "max_completion_tokens" | "max_tokens",
): Record<string, unknown> {
  const { body } = call;
  const request: Record<string, unknown> = { ...body, model: call.upstreamModel };
  if ((body.max_completion_tokens ?? body.max_tokens ?? null) === null) request[maxTokensField] = call.maxTokens;
  if (body.stream) request.stream_options = { ...body.stream_options, include_usage: true };
  return request;
}
