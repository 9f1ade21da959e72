// Embeddings (`/v1/embeddings`, `/openai/embeddings`, `/workers-ai/v1/embeddings`): OpenAI's
// body and answer for OpenAI's and Workers AI's embedding models; priced per input token.

import type { Context } from "hono";
import { WORKERS_AI } from "../generated/contract";
import { HttpError } from "../lib/errors";
import { estimateInputTokens, inputTokensBound } from "../pricing/estimate";
import type { AppEnv } from "../protocol/env";
import type { UpstreamCall } from "../providers";
import { postToGateway } from "../providers";
import { PROVIDER as AZURE_OPENAI, azureEndpoint } from "../providers/azure-openai";
import { authHeaders, chatError, EMBEDDINGS_PATH, embeddingsAnswer } from "../providers/openai";
import { openaiEmbeddings, runError, runOnBinding } from "../providers/workers-ai";
import { embeddingsFields } from "../request/fields";
import { attemptsFor, type Route, resolveRouteModel } from "../request/models";
import { type Exchange, serve } from "../request/serve";
import { boundOf, requestBody, upstreamCall } from "./call";

function noStream(): never {
  throw new HttpError(502, "The embeddings upstream answered with a stream.", { code: "upstream_error" });
}

type EmbeddingsBody = Record<string, unknown>;

function openai(call: UpstreamCall, body: EmbeddingsBody): Pick<Exchange, "send" | "error" | "answer"> {
  const payload = { ...body, model: call.upstreamModel };
  return {
    send: () => postToGateway(call, EMBEDDINGS_PATH, payload, authHeaders(call)),
    error: chatError,
    answer: embeddingsAnswer,
  };
}

function azure(call: UpstreamCall, body: EmbeddingsBody): Pick<Exchange, "send" | "error" | "answer"> {
  const at = azureEndpoint(call, "embeddings");
  const { model: _named, ...payload } = body; // the deployment in the path is the model
  return { send: () => postToGateway(call, at.path, payload, at.auth), error: at.error, answer: embeddingsAnswer };
}

function workersAI(
  call: UpstreamCall,
  body: EmbeddingsBody,
  promptTokens: number,
): Pick<Exchange, "send" | "error" | "answer"> {
  const input = body.input;
  const texts: unknown[] = typeof input === "string" ? [input] : Array.isArray(input) ? input : [input];
  if (!texts.every((item): item is string => typeof item === "string")) {
    throw new HttpError(400, "Workers AI embedding models take text, not token arrays.", { param: "input" });
  }
  return {
    send: () => runOnBinding(call, { text: texts }),
    error: runError,
    answer: (raw) => {
      try {
        const text = openaiEmbeddings(raw, {
          model: call.model,
          promptTokens,
          base64: body.encoding_format === "base64",
        });
        return { text, said: "", usage: null }; // Workers AI reports no usage for embeddings: estimated
      } catch {
        throw new HttpError(502, "Workers AI answered embeddings that are not JSON.", { code: "upstream_error" });
      }
    },
  };
}

export async function embeddings(c: Context<AppEnv>, route: Route): Promise<Response> {
  const request = await requestBody(c);
  const body = embeddingsFields(request.body);
  const { policy } = c.get("principal");
  const model = resolveRouteModel(body.model, route, policy);
  const estimated = estimateInputTokens(body.input);
  const exchange = (model: string): Exchange => {
    const call = upstreamCall(c, model);
    const wire =
      call.provider === WORKERS_AI
        ? workersAI(call, body, estimated)
        : call.provider === AZURE_OPENAI
          ? azure(call, body)
          : openai(call, body);
    return {
      call,
      bound: boundOf(call, inputTokensBound(request, { tools: false }), 0),
      estimatedPromptTokens: estimated,
      metered: true,
      ...wire,
      stream: noStream,
    };
  };
  return serve(c, { models: attemptsFor(body.model, model, route, policy), build: exchange });
}
