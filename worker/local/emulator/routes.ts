// Which fake provider answers a path under /v1/{account}/{gateway}, and how a request to it is
// prepared (provider, model, stream flag), key-checked and generated.
import { timingSafeEqual } from "node:crypto";
import { gatewayErrorResult, prop } from "./http";
import * as anthropic from "./providers/anthropic";
import * as azure from "./providers/azure-openai";
import * as bedrock from "./providers/bedrock";
import * as bedrockInvoke from "./providers/bedrock-invoke";
import * as compatible from "./providers/compatible";
import * as gemini from "./providers/gemini";
import * as openai from "./providers/openai";
import { chat } from "./providers/openai-chat";
import { responses, retrieve } from "./providers/openai-responses";
import * as workersAi from "./providers/workers-ai";
import type { GenerateContext } from "./state";
import type {
  Call,
  Family,
  GatewayConfig,
  Op,
  ParsedBody,
  ProviderRoute,
  RequestHeaders,
  Result,
  Route,
} from "./types";

interface ProviderFamily {
  defaultErrorResult(status: number): Result;
  /** The provider's answer to a wrong key; `presented` is the key as sent (some echo its tail). */
  keyErrorResult(presented?: string): Result;
}

// Provider slugs /compat accepts as a `model` prefix (cf-contract.md 1.3 plus the AIGateway
// provider enum). All are answered by the same deterministic fake model.
// biome-ignore format: a compact list of slugs
export const COMPAT_PROVIDERS = new Set([
  "openai", "anthropic", "workers-ai", "google-ai-studio", "google-vertex-ai", "groq", "mistral",
  "cohere", "perplexity-ai", "grok", "deepseek", "cerebras", "baseten", "parallel", "openrouter",
  "azure-openai", "aws-bedrock", "huggingface", "replicate",
]);

// Error shape ("family") per native provider; /compat always answers in OpenAI's shape
// (UNCONFIRMED for non-OpenAI providers: the gateway may pass their own error shape through).
const FAMILIES: Readonly<Record<Family, ProviderFamily>> = {
  openai,
  anthropic,
  "workers-ai": workersAi,
  groq: compatible.groq,
  mistral: compatible.mistral,
  deepseek: compatible.deepseek,
  grok: compatible.grok,
  "google-ai-studio": compatible.googleAiStudio,
  gemini,
  vertex: { defaultErrorResult: gemini.defaultErrorResult, keyErrorResult: gemini.vertexKeyErrorResult },
  azure,
  bedrock,
  custom: compatible.custom,
};

/**
 * Native OpenAI-wire paths: each provider's own URL with its host prefix stripped
 * (cf-contract-2 1.1). OpenAI's are reachable with and without /v1 (the docs use the bare
 * form, Cloudflare's ai-gateway-provider sends v1/...); xAI's docs show both forms too.
 */
const OPENAI_WIRE: Readonly<
  Record<
    string,
    { family: Family; chat: readonly string[]; embeddings?: readonly string[]; responses?: readonly string[] }
  >
> = {
  openai: {
    family: "openai",
    chat: ["chat/completions", "v1/chat/completions"],
    embeddings: ["embeddings", "v1/embeddings"],
    responses: ["responses", "v1/responses"],
  },
  groq: { family: "groq", chat: ["chat/completions"] },
  mistral: { family: "mistral", chat: ["v1/chat/completions"] },
  deepseek: { family: "deepseek", chat: ["chat/completions"] },
  grok: { family: "grok", chat: ["v1/chat/completions", "chat/completions"] },
  "google-ai-studio": { family: "google-ai-studio", chat: ["v1beta/openai/chat/completions"] },
};

/**
 * Route for the path segments after the gateway id, or null when nothing lives there.
 * Route: {universal} | {head, endpoint, family, op, compat?, pathModel?}.
 */
export function resolveRoute(rest: readonly string[]): Route | null {
  if (rest.length === 0) return { universal: true };
  const [head = "", ...tail] = rest; // rest is non-empty: the default never applies
  const endpoint = tail.join("/");
  const route = (family: Family, op: Op, extra: { compat?: boolean; pathModel?: string } = {}): ProviderRoute => ({
    head,
    endpoint,
    family,
    op,
    ...extra,
  });
  const wire = Object.hasOwn(OPENAI_WIRE, head) ? OPENAI_WIRE[head] : undefined;
  // Gemini's own API (v1beta, or v1 as the SDKs default to): models/{model}:{method}; the
  // same provider's OpenAI-compatible path is below
  const native =
    head === "google-ai-studio"
      ? /^(v1beta|v1)\/models\/([^/:]+):(generateContent|streamGenerateContent|countTokens)$/.exec(endpoint)
      : null;
  const ops: Readonly<Record<string, Op>> = {
    generateContent: "generate_content",
    streamGenerateContent: "stream_generate_content",
    countTokens: "gemini_count_tokens",
  };
  const op = native?.[3] === undefined ? undefined : ops[native[3]];
  if (native && op) return route("gemini", op, { pathModel: native[2] ?? "" });
  // Gemini on Vertex AI: the same methods under a project's publisher path, a bearer token
  const vertex =
    head === "google-vertex-ai"
      ? /^v1\/projects\/[^/]+\/locations\/[^/]+\/publishers\/google\/models\/([^/:]+):(generateContent|streamGenerateContent|countTokens)$/.exec(
          endpoint,
        )
      : null;
  const vertexOp = vertex?.[2] === undefined ? undefined : ops[vertex[2]];
  if (vertex && vertexOp) return route("vertex", vertexOp, { pathModel: vertex[1] ?? "" });
  // Azure OpenAI: {resource}/{deployment}/{operation}; the deployment is the model
  const azureOp = head === "azure-openai" ? azure.OPERATIONS.exec(endpoint) : null;
  if (azureOp) {
    const op = azureOp[2] === "chat/completions" ? "chat" : (azureOp[2] as "embeddings" | "responses");
    return route("azure", op, { pathModel: decodeURIComponent(azureOp[1] ?? "") });
  }
  // Bedrock: its runtime's URL after the region; the model id in the path (encoded: `:` as %3A)
  const converse = head === "aws-bedrock" ? bedrock.CONVERSE.exec(endpoint) : null;
  if (converse) {
    const op = converse[3] === "converse" ? "converse" : "converse_stream";
    return route("bedrock", op, { pathModel: decodeURIComponent(converse[2] ?? "") });
  }
  const invoke = head === "aws-bedrock" ? bedrockInvoke.INVOKE.exec(endpoint) : null;
  if (invoke) {
    const op =
      invoke[3] === "invoke" ? "invoke" : invoke[3] === "count-tokens" ? "invoke_count_tokens" : "invoke_stream";
    return route("bedrock", op, { pathModel: decodeURIComponent(invoke[2] ?? "") });
  }
  // an AI Gateway custom provider: the team's own server behind it speaks OpenAI's wire
  if (head.startsWith("custom-") && (endpoint === "chat/completions" || endpoint === "embeddings")) {
    return route("custom", endpoint === "embeddings" ? "embeddings" : "chat");
  }
  if (head === "compat") {
    if (endpoint === "chat/completions") return route("openai", "chat", { compat: true });
    if (endpoint === "embeddings") return route("openai", "embeddings", { compat: true });
  } else if (wire !== undefined) {
    if (wire.chat.includes(endpoint)) return route(wire.family, "chat");
    if (wire.embeddings?.includes(endpoint)) return route(wire.family, "embeddings");
    if (wire.responses?.includes(endpoint)) return route(wire.family, "responses");
    // GET responses/{id}: a stored response, or a background run's state
    if (wire.responses && /^(?:v1\/)?responses\/[^/]+$/.test(endpoint)) return route(wire.family, "retrieve");
  } else if (head === "anthropic") {
    if (endpoint === "v1/messages") return route("anthropic", "messages");
    if (endpoint === "v1/messages/count_tokens") return route("anthropic", "count_tokens");
  } else if (head === "workers-ai") {
    if (endpoint === "v1/chat/completions") return route("workers-ai", "chat");
    if (endpoint === "v1/embeddings") return route("workers-ai", "embeddings");
    // Docs say /workers-ai/{model}; a third party says /workers-ai/run/{model}: accept both.
    const model = tail[0] === "run" ? tail.slice(1).join("/") : endpoint;
    if (model.startsWith("@")) return route("workers-ai", "run", { pathModel: model });
  }
  return null;
}

/** {json, parseError} for a raw request body; an empty body parses to undefined. */
export function parseBody(rawBody: string): ParsedBody {
  if (rawBody === "") return { json: undefined, parseError: false };
  try {
    return { json: JSON.parse(rawBody), parseError: false };
  } catch {
    return { json: undefined, parseError: true };
  }
}

/**
 * Works out provider, model and streaming. Returns a call object, or
 * {error: result} for a gateway-level rejection (compat model format / provider).
 */
export function prepareCall(
  route: ProviderRoute,
  headers: RequestHeaders,
  { json, parseError }: ParsedBody,
  query: URLSearchParams = new URLSearchParams(),
  raw: { body: string; path: string } = { body: "", path: "" },
): Call {
  const model = prop(json, "model");
  const bodyModel = typeof model === "string" ? model : null;
  const call: Call = {
    route,
    family: route.family,
    op: route.op,
    provider: route.head,
    model: route.pathModel ?? bodyModel,
    bodyModel,
    json,
    parseError,
    headers,
    query,
    rawBody: raw.body,
    rawPath: raw.path,
    stream:
      route.op === "stream_generate_content" ||
      route.op === "converse_stream" ||
      route.op === "invoke_stream" ||
      prop(json, "stream") === true,
  };
  if (route.compat) {
    const slash = bodyModel === null ? -1 : bodyModel.indexOf("/");
    if (bodyModel === null || slash <= 0) return { ...call, error: gatewayErrorResult(2019) };
    call.provider = bodyModel.slice(0, slash);
    call.model = bodyModel.slice(slash + 1);
    if (!COMPAT_PROVIDERS.has(call.provider)) {
      return { ...call, error: gatewayErrorResult(2994, undefined, `Unsupported provider: ${call.provider}`) };
    }
  }
  return call;
}

function safeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a, "utf8");
  const right = Buffer.from(b, "utf8");
  if (left.length !== right.length) {
    timingSafeEqual(left, left); // same work either way: length is the only thing we leak
    return false;
  }
  return timingSafeEqual(left, right);
}

export function bearer(value: unknown): string | undefined {
  if (typeof value !== "string") return undefined;
  const match = /^Bearer\s+(.+)$/i.exec(value.trim());
  return match ? match[1] : undefined;
}

/** Gateway token check (cf-aig-authorization), used when the gateway has authentication on. */
export function gatewayTokenAccepted(gateway: GatewayConfig, headers: RequestHeaders): boolean {
  const presented = bearer(headers["cf-aig-authorization"]);
  return presented !== undefined && typeof gateway.token === "string" && safeEqual(presented, gateway.token);
}

// Native Anthropic takes `x-api-key`; recent anthropic SDKs (2.x) send the same key as
// `Authorization: Bearer` instead, so either is accepted (x-api-key wins when both are sent).
function presentedKey(call: Call): { raw: string | undefined; key: string | undefined } {
  if (call.family === "gemini") {
    // Google takes its key as x-goog-api-key (what the SDKs and the Gemini CLI send) or ?key=
    const key = call.headers["x-goog-api-key"] ?? call.query.get("key") ?? undefined;
    return { raw: key, key };
  }
  if (call.family === "azure") {
    const key = call.headers["api-key"];
    return { raw: key, key };
  }
  const apiKey = call.headers["x-api-key"];
  if (call.family === "anthropic" && !call.route.compat && apiKey !== undefined) {
    return { raw: apiKey, key: apiKey };
  }
  const raw = call.headers.authorization;
  return { raw, key: bearer(raw) };
}

// providerKeys is keyed by provider slug (the path's first segment, or compat's model prefix).
function providerKeyAccepted(call: Call, { config, gateway }: GenerateContext): boolean {
  if (call.route.binding) return true; // the binding is pre-authenticated: no provider key
  const { raw, key } = presentedKey(call);
  if (raw === undefined) return gateway.byokProviders.includes(call.provider);
  if (call.family === "gemini" && key === "") return false;
  const expected = config.providerKeys[call.provider];
  return key !== undefined && typeof expected === "string" && safeEqual(key, expected);
}

/** The provider auth header that goes into the cache key. */
export function providerAuthHeader(call: Call): string {
  return presentedKey(call).raw ?? "";
}

/** The family's own error body for an HTTP status (faults without a body). */
export function providerErrorResult(call: Call, status: number): Result {
  return (call.route.compat ? openai : FAMILIES[call.family]).defaultErrorResult(status);
}

/**
 * The in-band error a stream fault (errorAfterChunks) appends, for streams whose result does not
 * bring its own (failStream): Anthropic's `event: error` (overloaded, as cf-contract-2 8 lists),
 * else OpenAI chat's `data: {"error": ...}` (cf-contract-2 4.3; Workers AI's: UNCONFIRMED).
 */
export function streamErrorChunks(call: Call): string[] {
  if (call.family === "bedrock") return [bedrock.streamException()];
  if (call.family === "gemini" || call.family === "vertex")
    return [gemini.streamError(call.query.get("alt") === "sse")];
  if (call.family === "anthropic" && !call.route.compat) {
    const body = { type: "error", error: { type: "overloaded_error", message: "Overloaded" } };
    return [`event: error\ndata: ${JSON.stringify(body)}\n\n`];
  }
  const message = "The server had an error while processing your request. Sorry about that!";
  const body = { error: { message, type: "server_error", param: null, code: null } };
  return [`data: ${JSON.stringify(body)}\n\n`];
}

/** Runs the fake provider: key check, validation, completion. */
export function generate(call: Call, ctx: GenerateContext): Result {
  const family = call.route.compat ? openai : FAMILIES[call.family];
  if (call.family === "gemini" && presentedKey(call).raw === undefined && !providerKeyAccepted(call, ctx)) {
    return gemini.noKeyResult();
  }
  if (call.family === "bedrock") {
    const region = /^bedrock-runtime\/([^/]+)\//.exec(call.route.endpoint)?.[1] ?? "";
    const byok = call.headers.authorization === undefined && ctx.gateway.byokProviders.includes(call.provider);
    const refused = byok ? null : bedrock.authenticate(call, ctx.config.providerKeys[call.provider], region);
    if (refused) return refused;
    if (call.op === "invoke") return bedrockInvoke.invoke(call, ctx, "invoke");
    if (call.op === "invoke_stream") return bedrockInvoke.invoke(call, ctx, "invoke-with-response-stream");
    if (call.op === "invoke_count_tokens") return bedrockInvoke.invoke(call, ctx, "count-tokens");
    return bedrock.converse(call, ctx, call.op === "converse_stream");
  }
  if (call.family === "custom" && !ctx.config.customProviders.includes(call.provider)) {
    return gatewayErrorResult(2994, 400, `Unsupported provider: ${call.provider}`);
  }
  if (!providerKeyAccepted(call, ctx)) return family.keyErrorResult(presentedKey(call).key);
  if (call.family === "azure") return azure.generate(call, ctx);
  switch (call.op) {
    case "chat":
      return chat(call);
    case "embeddings":
      return openai.embeddings(call);
    case "responses":
      return responses(call, ctx);
    case "retrieve":
      return retrieve(call, ctx);
    case "messages":
      return anthropic.messages(call, ctx);
    case "count_tokens":
      return anthropic.countTokens(call);
    case "generate_content":
      return gemini.generateContent(call, ctx);
    case "stream_generate_content":
      return gemini.streamGenerateContent(call, ctx, call.query.get("alt") === "sse");
    case "gemini_count_tokens":
      return gemini.countTokens(call);
    default:
      return workersAi.run(call);
  }
}
