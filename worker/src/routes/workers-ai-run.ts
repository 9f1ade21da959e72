// Workers AI's own run API (`/workers-ai/@cf/<model>`): the model from the path, its inputs
// as the client wrote them (the stack's output cap added when it sets none), through the AI
// binding; answers in Cloudflare's v4 envelope, streams as Workers AI sends them.

import type { Context } from "hono";
import { MAX_OUTPUT_TOKENS } from "../generated/settings";
import { HttpError } from "../lib/errors";
import { estimateInputTokens, inputTokensBound } from "../pricing/estimate";
import type { AppEnv } from "../protocol/env";
import { meterRunStream, runAnswer, runError, runOnBinding } from "../providers/workers-ai";
import { runFields } from "../request/fields";
import { modelType, type Route, resolveRouteModel } from "../request/models";
import { type Exchange, serve } from "../request/serve";
import { boundOf, requestBody, upstreamCall } from "./call";

const PREFIX = "/workers-ai/";

/** The model the path names, percent-decoded; a path that does not decode is the client's 400. */
function modelOfPath(pathname: string): string {
  try {
    return decodeURIComponent(pathname.slice(PREFIX.length));
  } catch {
    throw new HttpError(400, "The model in the path is not valid percent-encoding.", { code: "invalid_path" });
  }
}

export async function workersAiRun(c: Context<AppEnv>, route: Route): Promise<Response> {
  const pathModel = modelOfPath(new URL(c.req.url).pathname);
  const request = await requestBody(c);
  const inputs = runFields(request.body);
  const model = resolveRouteModel(pathModel, route, c.get("principal").policy);
  const call = upstreamCall(c, model);
  const embedding = modelType(model) === "embedding";
  const maxTokens = embedding ? 0 : (inputs.max_tokens ?? MAX_OUTPUT_TOKENS);
  const seen = embedding ? inputs.text : { prompt: inputs.prompt, messages: inputs.messages, tools: inputs.tools };
  const promptTokens = inputTokensBound(request, { tools: !embedding && inputs.tools !== undefined });
  const boundAt = (tokens: number) => boundOf(call, promptTokens, tokens);
  const exchange = (cap: number): Exchange => ({
    call,
    bound: boundAt(cap),
    // an embedding has no output to lower
    ...(embedding ? {} : { outputCap: { tokens: cap, least: 1, boundAt, lowered: exchange } }),
    estimatedPromptTokens: estimateInputTokens(seen),
    metered: true,
    send: () => runOnBinding(call, embedding ? inputs : { ...inputs, max_tokens: cap }),
    error: runError,
    answer: runAnswer,
    stream: (upstream) => meterRunStream(upstream, call.signal),
  });
  return serve(c, { models: [model], build: () => exchange(maxTokens) });
}
