// Chat Completions (`/v1/chat/completions` and the providers' own chat paths): OpenAI's body,
// any chat model, through the model's provider module (worker/src/providers/).

import type { Context } from "hono";
import type { AppEnv } from "../env";
import { MAX_OUTPUT_TOKENS } from "../generated/settings";
import { type Route, resolveRouteModel } from "../models";
import { providerOf } from "../providers";
import type { ChatCall } from "../providers/types";
import { chatBody, readJsonBody, validate } from "../schemas";
import { serve } from "../serve";
import { estimatePromptTokens, promptTokensBound } from "../usage";
import { boundOf, upstreamCall } from "./call";

export async function chat(c: Context<AppEnv>, route: Route): Promise<Response> {
  const body = validate(chatBody, await readJsonBody(c.req.raw));
  const model = resolveRouteModel(body.model, route, c.get("principal").policy);
  const { upstreamModel, provider } = providerOf(model);
  const maxTokens = body.max_completion_tokens ?? body.max_tokens ?? MAX_OUTPUT_TOKENS;
  const call: ChatCall = { ...upstreamCall(c, model, upstreamModel), body, maxTokens };
  const clientWantsUsage = body.stream_options?.include_usage === true;
  return serve(c, {
    call,
    // every choice may use the full output
    bound: boundOf(call, promptTokensBound(body), maxTokens * (body.n ?? 1)),
    estimatedPromptTokens: estimatePromptTokens(body),
    metered: true,
    send: () => provider.send(call),
    error: (response) => provider.error(response),
    answer: (raw) => provider.completion(raw, call),
    stream: (upstream) => provider.stream(upstream, call, { clientWantsUsage }),
  });
}
