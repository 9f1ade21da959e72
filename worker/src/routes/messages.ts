// Anthropic's Messages API (`/v1/messages`, `/anthropic/v1/messages`) for Anthropic clients
// (the SDKs, Claude Code), passed through to Anthropic's native endpoint, or to Claude on Bedrock
// in Anthropic's format (InvokeModel: the same body and answer, the stream in AWS's framing,
// decoded back into Anthropic's events before it is metered); and count_tokens, which neither
// charges: authorised and logged, never metered.

import type { Context } from "hono";
import { HttpError } from "../lib/errors";
import { estimateInputTokens, inputTokensBound } from "../pricing/estimate";
import { hourCacheModels, requested } from "../pricing/extras";
import { priceFor } from "../pricing/prices";
import type { ChatBody, MessagesBody } from "../protocol/bodies";
import type { AppEnv } from "../protocol/env";
import { type ChatCall, postToGateway, providerOf } from "../providers";
import {
  COUNT_TOKENS_PATH,
  MESSAGES_PATH,
  MIN_THINKING_BUDGET,
  messageAnswer,
  meterMessagesStream,
  passthroughAuth,
  passthroughError,
} from "../providers/anthropic";
import {
  PROVIDER as AWS_BEDROCK,
  anthropicEvents,
  bedrockError,
  countMessageTokens,
  invokeMessages,
} from "../providers/aws-bedrock";
import { countTokensFields, messagesFields } from "../request/fields";
import { attemptsFor, type Route, resolveRouteModel, speaks } from "../request/models";
import { type Exchange, serve } from "../request/serve";
import { boundOf, requestBody, upstreamCall } from "./call";
import { bridgedAnswer } from "./messages-bridge/answer";
import { chatBodyOf } from "./messages-bridge/request";
import { anthropicStream } from "./messages-bridge/stream";

export async function messages(c: Context<AppEnv>, route: Route): Promise<Response> {
  const request = await requestBody(c);
  const body = messagesFields(request.body);
  const { policy } = c.get("principal");
  const model = resolveRouteModel(body.model, route, policy);
  const seen = { system: body.system, messages: body.messages, tools: body.tools };
  refuseForeignContainer(body.container);
  const asked = requested("messages", body, policy.allowUnpriced);
  const chain = attemptsFor(body.model, model, route, policy);
  const models = hourCacheModels(asked, chain, (m) => priceFor(m, policy), policy.allowUnpriced);
  const outputConfig = body.output_config as { format?: unknown } | null | undefined;
  const promptTokens = inputTokensBound(request, {
    tools: body.tools !== undefined || outputConfig?.format !== undefined,
  });
  // a model that does not speak Anthropic's wire is asked in OpenAI's (its provider module's)
  const chatBody = chain.every((m) => speaks(m, "anthropic")) ? null : chatBodyOf(body);
  const bridged = (model: string, chatRequest: ChatBody, cap: number): Exchange => {
    const { upstreamModel, provider } = providerOf(model);
    const call: ChatCall = { ...upstreamCall(c, model, upstreamModel), body: chatRequest, maxTokens: cap };
    const boundAt = (tokens: number) => boundOf(call, promptTokens, tokens, asked);
    return {
      call,
      bound: boundAt(cap),
      outputCap: { tokens: cap, least: 1, boundAt, lowered: (tokens) => bridged(model, chatRequest, tokens) },
      estimatedPromptTokens: estimateInputTokens(seen),
      metered: true,
      send: () => provider.send(call),
      error: (response) => provider.error(response),
      answer: (raw) => bridgedAnswer(provider.completion(raw, call), body.model),
      stream: (upstream) => {
        const metered = provider.stream(upstream, call, { clientWantsUsage: true });
        return { ...metered, stream: anthropicStream(metered.stream, body.model) };
      },
    };
  };
  const exchange = (model: string, cap = body.max_tokens): Exchange => {
    if (chatBody !== null && !speaks(model, "anthropic")) return bridged(model, chatBody, cap);
    const call = upstreamCall(c, model);
    const sent = cap === body.max_tokens ? body : withCap(body, cap);
    const payload = { ...sent, model: call.upstreamModel };
    const bedrock = call.provider === AWS_BEDROCK;
    const boundAt = (tokens: number) => boundOf(call, promptTokens, tokens, asked);
    return {
      call,
      bound: boundAt(cap),
      outputCap: {
        tokens: cap,
        least: thinks(body) ? MIN_THINKING_BUDGET + 1 : 1,
        boundAt,
        lowered: (tokens) => exchange(model, tokens),
      },
      estimatedPromptTokens: estimateInputTokens(seen),
      metered: true,
      send: bedrock
        ? () => invokeMessages(call, sent, c.req.raw.headers)
        : () => postToGateway(call, MESSAGES_PATH, payload, passthroughAuth(call, c.req.raw.headers)),
      error: bedrock ? bedrockError : passthroughError,
      answer: messageAnswer,
      stream: (upstream) => meterMessagesStream(bedrock ? anthropicEvents(upstream) : upstream, call.signal),
    };
  };
  return serve(c, { models, build: (model) => exchange(model) });
}

function thinks(body: MessagesBody): boolean {
  return (body.thinking as { type?: unknown } | null | undefined)?.type === "enabled";
}

/** The body with its max_tokens lowered (budget/clamp.ts), and a thinking budget that no
 * longer fits below it lowered too (Anthropic wants it below max_tokens). */
function withCap(body: MessagesBody, tokens: number): MessagesBody {
  const thinking = body.thinking as { type?: unknown; budget_tokens?: unknown } | null | undefined;
  const budget = thinking?.budget_tokens;
  const fits = !thinks(body) || typeof budget !== "number" || budget < tokens;
  return {
    ...body,
    max_tokens: tokens,
    ...(fits ? {} : { thinking: { ...thinking, budget_tokens: Math.max(MIN_THINKING_BUDGET, tokens - 1) } }),
  };
}

/**
 * A request naming a code execution container to reuse: every tenant's containers live in the
 * Worker's one Anthropic account and this gateway does not record whose each is, so none may be
 * named (a skills configuration without an id is a new container, and served).
 */
function refuseForeignContainer(container: unknown): void {
  const id = typeof container === "string" ? container : (container as { id?: unknown } | null)?.id;
  if (id === undefined || id === null) return;
  throw new HttpError(
    400,
    "container: reusing a code execution container by id is not served by this gateway (it cannot tell " +
      "whose container it is); leave it out to get a new one.",
    { param: "container" },
  );
}

export async function countTokens(c: Context<AppEnv>, route: Route): Promise<Response> {
  const body = countTokensFields((await requestBody(c)).body);
  const model = resolveRouteModel(body.model, route, c.get("principal").policy);
  if (!speaks(model, "anthropic")) {
    // another provider's model: its tokenizer is not Anthropic's, and counting is free anyway;
    // the gateway's own estimate of the same prompt (what it admits a request by)
    const estimate = estimateInputTokens({ system: body.system, messages: body.messages, tools: body.tools });
    return c.json({ input_tokens: estimate });
  }
  const call = upstreamCall(c, model);
  const payload = { ...body, model: call.upstreamModel };
  const exchange: Exchange = {
    call,
    bound: boundOf(call, 0, 0),
    estimatedPromptTokens: 0,
    metered: false,
    send:
      call.provider === AWS_BEDROCK
        ? () => countMessageTokens(call, body, c.req.raw.headers)
        : () => postToGateway(call, COUNT_TOKENS_PATH, payload, passthroughAuth(call, c.req.raw.headers)),
    error: call.provider === AWS_BEDROCK ? bedrockError : passthroughError,
    answer: (raw) => ({ text: raw, said: "", usage: null }),
    stream: meterMessagesStream,
  };
  return serve(c, { models: [model], build: () => exchange });
}
