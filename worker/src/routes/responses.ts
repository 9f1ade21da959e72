// OpenAI's Responses API (`/v1/responses`, `/openai/responses`), passed through to OpenAI's
// native endpoint. Stored state (`previous_response_id`, `conversation`, `store`) passes
// through too: that input lives upstream, unseen, so such a request is admitted as if its
// input were the stack's maxContextTokens (settled at the real usage).

import type { Context } from "hono";
import type { AppEnv } from "../env";
import { responsesFields } from "../fields";
import { MAX_CONTEXT_TOKENS, MAX_OUTPUT_TOKENS } from "../generated/settings";
import { attemptsFor, type Route, resolveRouteModel } from "../models";
import { postToGateway } from "../providers/gateway";
import { authHeaders } from "../providers/openai/endpoint";
import { chatError } from "../providers/openai/errors";
import { meterResponsesStream, RESPONSES_PATH, responsesAnswer } from "../providers/openai/responses";
import { type Exchange, serve } from "../serve";
import { estimateInputTokens, inputTokensBound } from "../usage";
import { boundOf, requestBody, upstreamCall } from "./call";

export async function responses(c: Context<AppEnv>, route: Route): Promise<Response> {
  const request = await requestBody(c);
  const body = responsesFields(request.body);
  const { policy } = c.get("principal");
  const model = resolveRouteModel(body.model, route, policy);
  const maxOutput = body.max_output_tokens ?? MAX_OUTPUT_TOKENS;
  const seen = { input: body.input, instructions: body.instructions, tools: body.tools, text: body.text };
  const stored = (body.previous_response_id ?? null) !== null || (body.conversation ?? null) !== null;
  const promptTokens =
    inputTokensBound(request, { tools: body.tools !== undefined || body.text !== undefined }) +
    (stored ? MAX_CONTEXT_TOKENS : 0);
  const exchange = (model: string): Exchange => {
    const call = upstreamCall(c, model);
    const payload = { ...body, model: call.upstreamModel, max_output_tokens: maxOutput };
    return {
      call,
      bound: boundOf(call, promptTokens, maxOutput),
      estimatedPromptTokens: estimateInputTokens(seen),
      metered: true,
      send: () => postToGateway(call, RESPONSES_PATH, payload, authHeaders(call)),
      error: chatError,
      answer: responsesAnswer,
      stream: (upstream) => meterResponsesStream(upstream, call.signal),
    };
  };
  return serve(c, { models: attemptsFor(body.model, model, route, policy), build: exchange });
}
