// Google AI Studio's Gemini API, native (/google-ai-studio/{v1beta|v1}/models/{model}:method):
// generateContent, streamGenerateContent (SSE with ?alt=sse, else one JSON array written in
// pieces) and countTokens; the key as `x-goog-api-key` (or ?key=); Google's RPC error shape.
//
// usageMetadata as Gemini reports it: promptTokenCount counts the whole prompt, cached tokens
// included (cachedContentTokenCount is part of it, as implicit caching reports a repeated
// prefix); candidatesTokenCount the answer; thoughtsTokenCount the thinking, billed as output
// but outside candidatesTokenCount; totalTokenCount their sum. In a stream every chunk carries
// the prompt's counts and the last one the whole usage. Thinking models (2.5, 3) think unless
// a budget of 0 turns it off (Pro cannot); includeThoughts adds the thought summary as a part
// with `thought: true`, and a function call carries a thoughtSignature.
import { createHash } from "node:crypto";
import {
  autoTool,
  byteTokens,
  type Completion,
  complete,
  lastUserText,
  pieces,
  promptTokens,
  randomWords,
  requestRng,
} from "../completion";
import { jsonResult, sseResult } from "../http";
import { randomBase62 } from "../ids";
import { type JsonAnswer, jsonAnswer, jsonPieces, sampleSchema, toolArguments } from "../reply";
import type { GenerateContext } from "../state";
import type { BufferedResult, Call, JsonObject, NormalizedMessage, Result } from "../types";
import { GOOGLE_STATUS } from "./compatible";
import { checkCountTokens, checkGenerateContent, type Declaration, type GeminiRequest } from "./gemini-request";

// Implicit caching: a repeated prefix of at least this many tokens is read from the cache.
const MIN_CACHED_TOKENS = 1_024;
const CACHE_TTL_MS = 5 * 60_000;
const THOUGHT_WORDS = 8;

export function errorResult(status: number, message: string, details?: unknown[]): BufferedResult {
  const error = {
    code: status,
    message,
    status: GOOGLE_STATUS[status] ?? (status >= 500 ? "INTERNAL" : "FAILED_PRECONDITION"),
    ...(details ? { details } : {}),
  };
  return jsonResult(status, { error });
}

export function defaultErrorResult(status: number): BufferedResult {
  if (status === 429) {
    return errorResult(429, "Resource has been exhausted (e.g. check quota).", [
      { "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: "5s" },
    ]);
  }
  if (status === 503) return errorResult(503, "The model is overloaded. Please try again later.");
  return errorResult(
    status,
    status >= 500 ? "An internal error has occurred." : `Request failed with status ${status}.`,
  );
}

/** A key that is wrong: 400 API_KEY_INVALID, as Google answers it. */
export function keyErrorResult(): BufferedResult {
  return errorResult(400, "API key not valid. Please pass a valid API key.", [
    {
      "@type": "type.googleapis.com/google.rpc.ErrorInfo",
      reason: "API_KEY_INVALID",
      domain: "googleapis.com",
      metadata: { service: "generativelanguage.googleapis.com" },
    },
  ]);
}

/** Vertex AI's answer to a token it does not accept. */
export function vertexKeyErrorResult(): BufferedResult {
  return errorResult(
    401,
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
  );
}

/** No key at all (and none stored on the gateway). */
export function noKeyResult(): BufferedResult {
  return errorResult(
    403,
    "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
  );
}

/** A stream's in-band error, as Gemini writes one into an SSE stream. */
export function streamError(sse: boolean): string {
  const body = JSON.stringify({
    error: { code: 503, message: "The model is overloaded. Please try again later.", status: "UNAVAILABLE" },
  });
  return sse ? `data: ${body}\r\n\r\n` : `,\r\n${body}]`;
}

const invalid = (message: string) => errorResult(400, message);

/** Models the fake API serves: Gemini and Gemma ids. */
function known(model: string): boolean {
  return /^(gemini|gemma)-[a-z0-9.-]+$/.test(model);
}

function notFound(model: string, version: string, method: string): BufferedResult {
  return errorResult(
    404,
    `models/${model} is not found for API version ${version}, or is not supported for ${method}. Call ListModels to see the list of available models and their supported methods.`,
  );
}

/** Thinking models: Gemini 2.5 and 3. Pro cannot switch it off. */
function thinks(model: string, thinking: JsonObject): boolean | string {
  if (!/^gemini-(2\.5|3)/.test(model)) {
    return thinking.thinkingBudget !== undefined && thinking.thinkingBudget !== 0
      ? "Thinking is not supported by this model."
      : false;
  }
  if (thinking.thinkingBudget === 0) {
    return /-pro/.test(model) ? "Budget 0 is invalid. This model only works in thinking mode." : false;
  }
  return true;
}

/** The text a part contributes to the prompt. */
function partText(part: JsonObject): string {
  if (typeof part.text === "string") return part.text;
  if (part.functionCall !== undefined) return JSON.stringify(part.functionCall);
  if (part.functionResponse !== undefined) return JSON.stringify(part.functionResponse);
  if (part.inlineData !== undefined) return "[image]";
  return "";
}

function normalized(request: GeminiRequest): NormalizedMessage[] {
  const out: NormalizedMessage[] = [];
  if (request.system.length > 0) out.push({ role: "system", text: request.system.map(partText).join("") });
  for (const content of request.contents) {
    // a thought is the model's own: not sent back as prompt
    const text = content.parts
      .filter((p) => p.thought !== true)
      .map(partText)
      .join("");
    out.push({ role: content.role === "model" ? "assistant" : "user", text });
  }
  return out;
}

function declarationsTokens(declarations: readonly Declaration[]): number {
  return declarations.length === 0 ? 0 : 4 + byteTokens(JSON.stringify(declarations));
}

type Answer =
  | { kind: "text"; completion: Completion }
  | { kind: "json"; json: JsonAnswer }
  | { kind: "call"; name: string; id: string; json: JsonAnswer };

/** Whether the last turn hands back function results (then the model answers in words). */
function answersFunction(request: GeminiRequest): boolean {
  const last = request.contents[request.contents.length - 1];
  return last?.parts.some((p) => p.functionResponse !== undefined) === true;
}

function decide(request: GeminiRequest, model: string, messages: NormalizedMessage[], max: unknown): Answer {
  const callable = request.declarations.filter((d) => request.allowed.length === 0 || request.allowed.includes(d.name));
  const forced = request.mode === "ANY" || request.mode === "VALIDATED";
  const chosen =
    request.mode === "NONE" || answersFunction(request)
      ? undefined
      : forced
        ? callable[0]
        : autoTool(callable, messages);
  if (chosen !== undefined) {
    const json = toolArguments({ name: chosen.name, schema: chosen.schema }, model, messages, max);
    return { kind: "call", name: chosen.name, id: `${chosen.name}-${randomBase62(8)}`, json };
  }
  if (request.json) {
    return { kind: "json", json: jsonAnswer(sampleSchema(request.schema, model, messages, "response_schema"), max) };
  }
  return { kind: "text", completion: complete(messages, model, max) };
}

function outputTokens(answer: Answer): number {
  return answer.kind === "text" ? answer.completion.completionTokens : answer.json.tokens;
}

function finishReason(answer: Answer): string {
  const reason = answer.kind === "text" ? answer.completion.finishReason : answer.json.finishReason;
  return reason === "length" ? "MAX_TOKENS" : "STOP";
}

/** Implicit caching: the prompt before the last turn, read from the cache when seen before. */
function cachedTokens(ctx: GenerateContext, model: string, messages: NormalizedMessage[]): number {
  const prefix = messages.slice(0, -1);
  const tokens = prefix.length === 0 ? 0 : promptTokens(prefix);
  if (tokens < MIN_CACHED_TOKENS) return 0;
  const hash = createHash("sha256").update(`gemini\u0000${ctx.gatewayId}\u0000${model}`);
  for (const m of prefix) hash.update(`\u0000${m.role}\u0000${m.text}`);
  const key = hash.digest("hex");
  const hit = ctx.promptCache.hit(key, CACHE_TTL_MS);
  if (!hit) ctx.promptCache.write(key, CACHE_TTL_MS);
  // the whole messages' part of the prefix: the cache reads what it holds
  return hit ? tokens : 0;
}

/**
 * Gemini 3 wants each model turn's first function call back with the thought signature it came
 * with (parallel calls: the first carries it); "skip_thought_signature_validator" opts out.
 */
function missingSignature(model: string, request: GeminiRequest): string | null {
  if (!/^gemini-3/.test(model)) return null;
  for (const [i, content] of request.contents.entries()) {
    if (content.role !== "model") continue;
    const at = content.parts.findIndex((p) => p.functionCall !== undefined);
    const first = content.parts[at];
    if (first === undefined || typeof first.thoughtSignature === "string") continue;
    const name = String((first.functionCall as JsonObject | undefined)?.name ?? "");
    return `Function call is missing a thought_signature in functionCall parts. This is required for tools to work correctly, and missing thought_signature may lead to degraded model performance. Additional data, function call \`default_api:${name}\` , position ${i + 1}. Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details.`;
  }
  return null;
}

interface Usage {
  prompt: number;
  cached: number;
  output: number;
  thoughts: number;
}

function usageMetadata({ prompt, cached, output, thoughts }: Usage, final: boolean): JsonObject {
  const details = [{ modality: "TEXT", tokenCount: prompt }];
  if (!final) return { promptTokenCount: prompt, totalTokenCount: prompt, promptTokensDetails: details };
  return {
    promptTokenCount: prompt,
    candidatesTokenCount: output,
    totalTokenCount: prompt + output + thoughts,
    ...(cached > 0 ? { cachedContentTokenCount: cached } : {}),
    promptTokensDetails: details,
    ...(cached > 0 ? { cacheTokensDetails: [{ modality: "TEXT", tokenCount: cached }] } : {}),
    ...(thoughts > 0 ? { thoughtsTokenCount: thoughts } : {}),
  };
}

function thoughtText(model: string, messages: NormalizedMessage[]): string {
  return `**Thinking it through**\n\n${randomWords(requestRng(model, messages, "thought"), THOUGHT_WORDS)}`;
}

interface Plan {
  model: string;
  request: GeminiRequest;
  messages: NormalizedMessage[];
  answer: Answer;
  usage: Usage;
  thought: string | null;
  signature: string | null;
  head: JsonObject;
}

function plan(call: Call, ctx: GenerateContext, method: string): Plan | BufferedResult {
  const model = call.model ?? "";
  const version = call.route.endpoint.startsWith("v1beta/") ? "v1beta" : "v1";
  if (call.parseError) return invalid("Invalid JSON payload received. Unexpected token.");
  if (!known(model)) return notFound(model, version, method);
  const request = checkGenerateContent(call.json);
  if (typeof request === "string") return invalid(request);
  const thinking = thinks(model, request.thinking);
  if (typeof thinking === "string") return invalid(thinking);
  const unsigned = missingSignature(model, request);
  if (unsigned !== null) return invalid(unsigned);
  const messages = normalized(request);
  const max = request.generation.maxOutputTokens;
  // thinking counts against maxOutputTokens: what it leaves is the answer's (none: MAX_TOKENS)
  const planned = thinking ? 16 + (byteTokens(lastUserText(messages)) % 48) : 0;
  const thoughts = typeof max === "number" ? Math.min(planned, max) : planned;
  const answer = decide(request, model, messages, typeof max === "number" ? max - thoughts : max);
  const prompt = promptTokens(messages) + declarationsTokens(request.declarations);
  const usage = { prompt, cached: cachedTokens(ctx, model, messages), output: outputTokens(answer), thoughts };
  return {
    model,
    request,
    messages,
    answer,
    usage,
    thought: thinking && request.thinking.includeThoughts === true ? thoughtText(model, messages) : null,
    signature: thinking ? Buffer.from(randomBase62(24)).toString("base64") : null,
    head: { modelVersion: model, responseId: randomBase62(22) },
  };
}

/** The answer's parts as a whole response carries them. */
function parts(p: Plan): JsonObject[] {
  const out: JsonObject[] = p.thought === null ? [] : [{ text: p.thought, thought: true }];
  const { answer } = p;
  if (answer.kind === "call") {
    const args = answer.json.finishReason === "length" ? {} : answer.json.value;
    const call: JsonObject = { functionCall: { name: answer.name, args } };
    out.push(p.signature === null ? call : { ...call, thoughtSignature: p.signature });
  } else out.push({ text: answer.kind === "text" ? answer.completion.text : answer.json.text });
  return out;
}

function candidate(partsOf: JsonObject[], finish: string | null): JsonObject {
  return { content: { parts: partsOf, role: "model" }, ...(finish === null ? {} : { finishReason: finish }), index: 0 };
}

/** The stream's chunks: the thought, the text in pieces (a call whole), the last with the usage. */
function streamChunks(p: Plan): JsonObject[] {
  const { answer } = p;
  const texts =
    answer.kind === "call" ? [] : answer.kind === "text" ? pieces(answer.completion) : jsonPieces(answer.json.text);
  const chunkParts: JsonObject[][] = [];
  if (p.thought !== null) chunkParts.push([{ text: p.thought, thought: true }]);
  if (answer.kind === "call") chunkParts.push(parts({ ...p, thought: null }));
  else for (const text of texts) chunkParts.push([{ text }]);
  return chunkParts.map((chunk, i) => {
    const last = i === chunkParts.length - 1;
    return {
      candidates: [candidate(chunk, last ? finishReason(answer) : null)],
      usageMetadata: usageMetadata(p.usage, last),
      ...p.head,
    };
  });
}

function withUsage(result: Result, usage: Usage): Result {
  const completion = usage.output + usage.thoughts;
  result.usage = {
    prompt_tokens: usage.prompt,
    completion_tokens: completion,
    total_tokens: usage.prompt + completion,
  };
  return result;
}

/** POST …/models/{model}:generateContent. */
export function generateContent(call: Call, ctx: GenerateContext): Result {
  const p = plan(call, ctx, "generateContent");
  if ("status" in p) return p;
  const body = {
    candidates: [candidate(parts(p), finishReason(p.answer))],
    usageMetadata: usageMetadata(p.usage, true),
    ...p.head,
  };
  return withUsage(jsonResult(200, body), p.usage);
}

/** POST …/models/{model}:streamGenerateContent (?alt=sse: SSE; else a JSON array in pieces). */
export function streamGenerateContent(call: Call, ctx: GenerateContext, sse: boolean): Result {
  const p = plan(call, ctx, "streamGenerateContent");
  if ("status" in p) return p;
  const chunks = streamChunks(p).map((chunk) => JSON.stringify(chunk));
  const written = sse
    ? chunks.map((c) => `data: ${c}\r\n\r\n`)
    : chunks.map((c, i) => `${i === 0 ? "[" : ",\r\n"}${c}${i === chunks.length - 1 ? "]" : ""}`);
  const result: Result = sse
    ? sseResult(written)
    : { status: 200, headers: { "content-type": "application/json; charset=UTF-8" }, chunks: written };
  result.failStream = () => [streamError(sse)];
  return withUsage(result, p.usage);
}

/** POST …/models/{model}:countTokens. */
export function countTokens(call: Call): Result {
  const model = call.model ?? "";
  const version = call.route.endpoint.startsWith("v1beta/") ? "v1beta" : "v1";
  if (call.parseError) return invalid("Invalid JSON payload received. Unexpected token.");
  if (!known(model)) return notFound(model, version, "countTokens");
  const request = checkCountTokens(call.json);
  if (typeof request === "string") return invalid(request);
  const total = promptTokens(normalized(request)) + declarationsTokens(request.declarations);
  const result = jsonResult(200, {
    totalTokens: total,
    promptTokensDetails: [{ modality: "TEXT", tokenCount: total }],
  });
  result.usage = null;
  return result;
}
