// Azure OpenAI behind AI Gateway: `azure-openai/{resource}/{deployment}/{operation}?api-version=…`
// (AI Gateway's azureopenai page), the key in `api-key`. The deployment is the model (the body's
// `model` is optional and ignored, as Azure does); answers are OpenAI's (openai-chat.ts,
// openai.ts, openai-responses.ts) with Azure's content filter annotations: `prompt_filter_results`
// on a completion (a stream's first chunk carries them alone, with no choices) and
// `content_filter_results` on each choice. A last user message containing
// `emulate:content-filter` is blocked as Azure's filter blocks a prompt: a 400
// `content_filter` whose innererror holds the per-category results.
import { normalizeMessages } from "../completion";
import { isJsonObject, jsonResult } from "../http";
import type { GenerateContext } from "../state";
import type { BufferedResult, Call, JsonObject, Result } from "../types";
import { embeddings } from "./openai";
import { chat } from "./openai-chat";
import { responses } from "./openai-responses";

export const OPERATIONS = /^[^/]+\/([^/]+)\/(chat\/completions|embeddings|responses)$/;
const FILTER_TRIGGER = "emulate:content-filter";
const CATEGORIES = ["hate", "self_harm", "sexual", "violence"] as const;

function azureError(status: number, code: string, message: string, extra: JsonObject = {}): BufferedResult {
  return jsonResult(status, { error: { code, message, ...extra } });
}

export function defaultErrorResult(status: number): BufferedResult {
  if (status === 429) {
    return azureError(
      429,
      "429",
      "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 6 seconds.",
    );
  }
  if (status >= 500)
    return azureError(status, "InternalServerError", "The server had an error while processing your request.");
  return azureError(status, String(status), `Request failed with status ${status}.`);
}

export function keyErrorResult(): BufferedResult {
  return azureError(
    401,
    "401",
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.",
  );
}

function filterResults(filtered: boolean): JsonObject {
  return Object.fromEntries(
    CATEGORIES.map((name) => [
      name,
      filtered && name === "violence" ? { filtered: true, severity: "high" } : { filtered: false, severity: "safe" },
    ]),
  );
}

function promptFilterResults(): JsonObject[] {
  return [{ prompt_index: 0, content_filter_results: filterResults(false) }];
}

function lastUserText(json: JsonObject): string {
  const messages = Array.isArray(json.messages) ? normalizeMessages(json.messages) : [];
  const users = messages.filter((m) => m.role === "user");
  if (users.length > 0) return users[users.length - 1]?.text ?? "";
  return typeof json.input === "string" ? json.input : JSON.stringify(json.input ?? "");
}

function filteredPrompt(): BufferedResult {
  return azureError(
    400,
    "content_filter",
    "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry. To learn more about our content filtering policies please read our documentation: https://go.microsoft.com/fwlink/?linkid=2198766",
    {
      param: "prompt",
      status: 400,
      innererror: { code: "ResponsibleAIPolicyViolation", content_filter_result: filterResults(true) },
    },
  );
}

/** Azure's annotations on an OpenAI chat answer (JSON, or the chunks of a stream). */
function annotated(result: Result): Result {
  if (result.status !== 200) return result;
  if (result.chunks !== undefined) {
    const head = {
      choices: [],
      created: 0,
      id: "",
      model: "",
      object: "",
      prompt_filter_results: promptFilterResults(),
    };
    return { ...result, chunks: [`data: ${JSON.stringify(head)}\n\n`, ...result.chunks] };
  }
  const body = JSON.parse(result.body) as JsonObject;
  const choices = Array.isArray(body.choices) ? body.choices : [];
  const out = {
    ...body,
    choices: choices.map((choice) => ({ ...(choice as JsonObject), content_filter_results: filterResults(false) })),
    prompt_filter_results: promptFilterResults(),
  };
  return { ...result, body: JSON.stringify(out) };
}

export function generate(call: Call, ctx: GenerateContext): Result {
  if (!call.query.get("api-version")) return azureError(404, "404", "Resource not found");
  const deployment = call.model ?? "";
  if (!isJsonObject(call.json)) return call.op === "chat" ? chat(call) : embeddings(call);
  if (call.op !== "embeddings" && lastUserText(call.json).includes(FILTER_TRIGGER)) return filteredPrompt();
  // the deployment is the model: a body without one is whole
  const withModel: Call = { ...call, json: { ...call.json, model: call.json.model ?? deployment } };
  if (call.op === "embeddings") return embeddings(withModel);
  if (call.op === "responses") return responses(withModel, ctx);
  return annotated(chat(withModel));
}
