// Gemini's own API (`/v1beta/models/{model}:{method}`, `/v1/…`, `/google-ai-studio/…`) for Gemini
// clients (google-genai, the Gemini CLI), passed through to AI Gateway's google-ai-studio
// endpoint (or Vertex AI's, for a google-vertex-ai model an alias names) on the one policy path: generateContent, streamGenerateContent (as SSE), and
// countTokens, which Google does not charge (authorised and logged, never metered).
//
// What the gateway reads: the model (the path), the output cap (generationConfig.maxOutputTokens,
// set to the stack's when the client gives none, so the worst case holds: Gemini counts its
// thinking in it), and what names objects in the Worker's one Google account (an uploaded
// file, an explicit cache): those are refused, since nothing records whose they are.

import type { Context } from "hono";
import { MAX_OUTPUT_TOKENS } from "../generated/settings";
import { HttpError } from "../lib/errors";
import { estimateInputTokens, inputTokensBound } from "../pricing/estimate";
import type { AppEnv } from "../protocol/env";
import { postToGateway, type UpstreamCall } from "../providers";
import {
  authHeaders,
  GEMINI_METHODS,
  type GeminiMethod,
  geminiAnswer,
  geminiPassthroughError,
  meterGeminiStream,
  nativePath,
} from "../providers/google-ai-studio";
import { PROVIDER as VERTEX, vertexAuthHeaders, vertexNativePath } from "../providers/google-vertex-ai";
import { attemptsFor, type Route, resolveRouteModel } from "../request/models";
import { type Exchange, serve } from "../request/serve";
import { boundOf, requestBody, upstreamCall } from "./call";

type Json = Record<string, unknown>;

function asObject(value: unknown): Json | null {
  return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Json) : null;
}

/** `gemini-2.5-flash:generateContent` → the model and the method. */
function target(call: string): { model: string; method: GeminiMethod } {
  const at = call.lastIndexOf(":");
  const method = call.slice(at + 1);
  if (at <= 0 || !(GEMINI_METHODS as readonly string[]).includes(method)) {
    throw new HttpError(404, `Method not found: ${call}.`, { code: "not_found" });
  }
  return { model: call.slice(0, at), method: method as GeminiMethod };
}

/** A field in either spelling the API accepts (generationConfig / generation_config). */
function field(object: Json | null, camel: string, snake: string): unknown {
  return object?.[camel] ?? object?.[snake];
}

/** Parts that name objects in the Worker's one Google account, refused by name. */
function refuseAccountObjects(body: Json): void {
  if (field(body, "cachedContent", "cached_content") !== undefined) {
    throw new HttpError(
      400,
      "cachedContent: explicit caches live in this gateway's one Google account and are not served; " +
        "Gemini's implicit caching still applies.",
      { param: "cachedContent" },
    );
  }
  const contents = Array.isArray(body.contents) ? body.contents : [];
  contents.forEach((content, i) => {
    const parts = asObject(content)?.parts;
    (Array.isArray(parts) ? parts : []).forEach((part, j) => {
      if (field(asObject(part), "fileData", "file_data") !== undefined) {
        throw new HttpError(
          400,
          `contents[${i}].parts[${j}].fileData: uploaded files live in this gateway's one Google account and ` +
            "are not served; send the data inline (inlineData).",
          { param: `contents[${i}].parts[${j}].fileData` },
        );
      }
    });
  });
}

// Gemini's tools that Google bills per grounded request beyond the tokens (Search and Maps
// grounding); code execution and URL context are billed as tokens.
const BILLED_GROUNDING = ["googleSearch", "googleSearchRetrieval", "googleMaps"];

/** A billed grounding tool the stack has no price for: refused unless the org allows the
 * unpriced (then its tokens are charged), as on every route (decision 0026). */
function refuseUnpricedGrounding(body: Json, allowUnpriced: boolean): void {
  if (allowUnpriced) return;
  const tools = Array.isArray(body.tools) ? body.tools : [];
  tools.forEach((tool, i) => {
    for (const name of BILLED_GROUNDING) {
      const snake = name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
      if (field(asObject(tool), name, snake) === undefined) continue;
      throw new HttpError(
        400,
        `tools[${i}].${name}: Google bills grounding per request and this gateway has no price for it; ` +
          "leave the tool out, or ask for your organization to allow unpriced tools.",
        { param: `tools[${i}].${name}` },
      );
    }
  });
}

/** The client's output cap, or the stack's, set in the body sent (Gemini counts thinking in it). */
function capped(body: Json): { payload: Json; maxOutput: number } {
  const config = asObject(field(body, "generationConfig", "generation_config")) ?? {};
  const asked = field(config, "maxOutputTokens", "max_output_tokens");
  if (asked !== undefined && (typeof asked !== "number" || !Number.isInteger(asked) || asked < 1)) {
    throw new HttpError(400, "generationConfig.maxOutputTokens must be a positive integer.", {
      param: "generationConfig.maxOutputTokens",
    });
  }
  if (typeof asked === "number") return { payload: body, maxOutput: asked };
  const { generation_config: _, ...rest } = body;
  return {
    payload: { ...rest, generationConfig: { ...config, maxOutputTokens: MAX_OUTPUT_TOKENS } },
    maxOutput: MAX_OUTPUT_TOKENS,
  };
}

/** The body with its output cap lowered to fit a budget (budget/clamp.ts), in the config it has. */
function withCap(body: Json, tokens: number): Json {
  const key =
    body.generationConfig === undefined && body.generation_config !== undefined
      ? "generation_config"
      : "generationConfig";
  const { max_output_tokens: _, ...config } = asObject(body[key]) ?? {};
  return { ...body, [key]: { ...config, maxOutputTokens: tokens } };
}

/** Where a Gemini model's method is: Google AI Studio's path, or Vertex AI's for its models. */
function pathOf(provider: string, model: string, method: GeminiMethod): string {
  return provider === VERTEX ? vertexNativePath(model, method) : nativePath(model, method);
}

function authOf(call: UpstreamCall): Record<string, string> {
  return call.provider === VERTEX ? vertexAuthHeaders(call) : authHeaders(call);
}

export async function gemini(c: Context<AppEnv>, route: Route): Promise<Response> {
  const { model: asked, method } = target(c.req.param("call") ?? "");
  if (method === "streamGenerateContent" && c.req.query("alt") !== "sse") {
    throw new HttpError(400, "streamGenerateContent is served as server-sent events: add alt=sse to the URL.", {
      param: "alt",
    });
  }
  const request = await requestBody(c);
  const { policy } = c.get("principal");
  const model = resolveRouteModel(asked, route, policy);
  if (method === "countTokens") return countTokens(c, model, request.body);
  refuseAccountObjects(request.body);
  refuseUnpricedGrounding(request.body, policy.allowUnpriced);
  const { payload, maxOutput } = capped(request.body);
  const tools = request.body.tools !== undefined;
  const promptTokens = inputTokensBound(request, { tools });
  const seen = {
    contents: request.body.contents,
    system: field(request.body, "systemInstruction", "system_instruction"),
  };
  const exchange = (model: string, cap = maxOutput): Exchange => {
    const call = upstreamCall(c, model);
    const sent = cap === maxOutput ? payload : withCap(payload, cap);
    const boundAt = (tokens: number) => boundOf(call, promptTokens, tokens);
    return {
      call,
      bound: boundAt(cap),
      outputCap: { tokens: cap, least: 1, boundAt, lowered: (tokens) => exchange(model, tokens) },
      estimatedPromptTokens: estimateInputTokens(seen),
      metered: true,
      send: () => postToGateway(call, pathOf(call.provider, call.upstreamModel, method), sent, authOf(call)),
      error: geminiPassthroughError,
      answer: geminiAnswer,
      stream: (upstream) => meterGeminiStream(upstream, call.signal),
    };
  };
  return serve(c, { models: attemptsFor(asked, model, route, policy), build: (model) => exchange(model) });
}

async function countTokens(c: Context<AppEnv>, model: string, body: Json): Promise<Response> {
  const call = upstreamCall(c, model);
  const exchange: Exchange = {
    call,
    bound: boundOf(call, 0, 0),
    estimatedPromptTokens: 0,
    metered: false,
    send: () => postToGateway(call, pathOf(call.provider, call.upstreamModel, "countTokens"), body, authOf(call)),
    error: geminiPassthroughError,
    answer: (raw) => ({ text: raw, said: "", usage: null }),
    stream: meterGeminiStream,
  };
  return serve(c, { models: [model], build: () => exchange });
}
