// Chat Completions (`/v1/chat/completions` and the providers' own chat paths): OpenAI's body,
// any chat model, through the model's provider module (worker/src/providers/); its fallback
// chain, and a Workers AI stand-in when AI Gateway itself is down.

import type { Context } from "hono";
import { MAX_OUTPUT_TOKENS, WORKERS_AI_STAND_INS } from "../generated/settings";
import { estimatePromptTokens, inputTokensBound } from "../pricing/estimate";
import { requested, withTools } from "../pricing/extras";
import type { ChatBody } from "../protocol/bodies";
import type { AppEnv } from "../protocol/env";
import type { ChatCall } from "../providers";
import { providerOf } from "../providers";
import { MIN_THINKING_BUDGET } from "../providers/anthropic";
import { chatFields } from "../request/fields";
import { attemptsFor, type Route, resolveRouteModel, serves, speaks } from "../request/models";
import { type Exchange, serve } from "../request/serve";
import { boundOf, requestBody, upstreamCall } from "./call";

export async function chat(c: Context<AppEnv>, route: Route): Promise<Response> {
  const request = await requestBody(c);
  const body = chatFields(request.body);
  const promptTokens = inputTokensBound(request, {
    tools: body.tools !== undefined || body.response_format !== undefined,
  });
  const { policy } = c.get("principal");
  const model = resolveRouteModel(body.model, route, policy);
  const asked = requested("chat", body, policy.allowUnpriced);
  const maxTokens = body.max_completion_tokens ?? body.max_tokens ?? MAX_OUTPUT_TOKENS;
  const clientWantsUsage = body.stream_options?.include_usage === true;

  const exchange = (model: string, direct = false, cap = maxTokens): Exchange => {
    const { upstreamModel, provider } = providerOf(model);
    const sent = cap === maxTokens ? body : withCap(body, cap);
    const call: ChatCall = { ...upstreamCall(c, model, upstreamModel), body: sent, maxTokens: cap, direct };
    // a search model searches when asked (web_search_options): OpenAI's own, nobody else's
    const searched = call.provider === "openai" ? asked : { ...asked, tools: {}, inputTokens: 0 };
    // every choice may use the full output
    const boundAt = (tokens: number) => boundOf(call, promptTokens, tokens * (body.n ?? 1), searched);
    // Anthropic's thinking (reasoning_effort) needs max_tokens above its least budget
    const thinks = speaks(model, "anthropic") && typeof body.reasoning_effort === "string";
    return {
      call,
      bound: boundAt(cap),
      outputCap: {
        tokens: cap,
        least: thinks ? MIN_THINKING_BUDGET + 1 : 1,
        boundAt,
        lowered: (tokens) => exchange(model, direct, tokens),
      },
      estimatedPromptTokens: estimatePromptTokens(body),
      metered: true,
      send: () => provider.send(call),
      error: (response) => provider.error(response),
      answer: (raw) => withTools(provider.completion(raw, call), searched.tools),
      stream: (upstream) => {
        const metered = provider.stream(upstream, call, { clientWantsUsage });
        return { ...metered, done: metered.done.then((m) => withTools(m, searched.tools)) };
      },
    };
  };
  return serve(c, {
    models: attemptsFor(body.model, model, route, policy),
    build: (model) => exchange(model),
    standIn: (model) => {
      const standIn = Object.hasOwn(WORKERS_AI_STAND_INS, model) ? WORKERS_AI_STAND_INS[model] : undefined;
      // only where the route serves it: /openai/chat/completions is never answered by Workers AI
      return standIn && policy.allowedModels.includes(standIn) && serves(route, standIn)
        ? exchange(standIn, true)
        : null;
    },
  });
}

/** The body with its output cap lowered (budget/clamp.ts): in the fields the client set; a body
 * with neither gets the call's maxTokens from its provider module, as with the default cap. */
function withCap(body: ChatBody, tokens: number): ChatBody {
  const lowered = { ...body };
  if ((body.max_completion_tokens ?? null) !== null) lowered.max_completion_tokens = tokens;
  if ((body.max_tokens ?? null) !== null) lowered.max_tokens = tokens;
  return lowered;
}
