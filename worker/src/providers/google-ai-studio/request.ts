// An OpenAI chat request → a Gemini generateContent request: system and developer messages
// become `systemInstruction`, user and assistant turns `contents` (roles user and model, same-role
// turns merged), images inline data, assistant tool calls `functionCall` parts and tool messages
// `functionResponse` parts, tools `functionDeclarations` (their parameters as JSON Schema),
// tool_choice the function-calling mode, response_format a JSON answer with its schema, and the
// output cap, sampling and stop sequences the generation config. What Gemini cannot do (n > 1,
// logprobs, an image by URL) is a 400 naming the parameter, never dropped.
//
// Thought signatures: a Gemini function call carries one, and Gemini 3 refuses a conversation
// whose calls come back without it. OpenAI's format has no place for it, so the call's id
// carries it (`<id>__thought__<signature>`, as LiteLLM does) and this turns it back.

import {
  asObject,
  assistantParts,
  conversation,
  functionTools,
  invalid,
  type Json,
  type Speaker,
  toolCallOf,
} from "../chat-request";
import type { ChatCall } from "../types";

export const THOUGHT_SEPARATOR = "__thought__";
// Gemini 2.5's thinking budgets for OpenAI's reasoning_effort; Gemini 3 takes a level.
const THINKING_BUDGET: Record<string, number> = { none: 0, minimal: 512, low: 1024, medium: 8192, high: 24576 };
const THINKING_LEVEL: Record<string, string> = { minimal: "MINIMAL", low: "LOW", medium: "MEDIUM", high: "HIGH" };

type Part = Json;

/** A tool call id as the client got it → the call's own id and its thought signature. */
export function splitCallId(id: string): { id: string; signature: string | null } {
  const at = id.indexOf(THOUGHT_SEPARATOR);
  if (at === -1) return { id, signature: null };
  return { id: id.slice(0, at), signature: id.slice(at + THOUGHT_SEPARATOR.length) || null };
}

/** A function call's id for the client: its own, with its thought signature when it has one. */
export function joinCallId(id: string, signature: unknown): string {
  return typeof signature === "string" && signature !== "" ? `${id}${THOUGHT_SEPARATOR}${signature}` : id;
}

/** `data:image/png;base64,xxx` → inline data; anything else cannot reach Gemini inline. */
function inlineImage(url: string, where: string): Part {
  const data = /^data:([^;,]+);base64,(.*)$/s.exec(url);
  if (!data) {
    throw invalid(where, `'${where}' must be a base64 data URL: Gemini models take images inline.`);
  }
  const [, mimeType = "", payload = ""] = data;
  return { inlineData: { mimeType, data: payload } };
}

/** OpenAI content (a string or parts) → Gemini parts. */
function parts(content: unknown, where: string): Part[] {
  if (content === null || content === undefined) return [];
  if (typeof content === "string") return content === "" ? [] : [{ text: content }];
  if (!Array.isArray(content)) throw invalid(where, `'${where}' must be a string or an array of parts.`);
  return content.map((raw, i) => {
    const part = asObject(raw) ?? {};
    const at = `${where}[${i}]`;
    if (part.type === "text" && typeof part.text === "string") return { text: part.text };
    if (part.type === "image_url") {
      const image = asObject(part.image_url);
      const url = typeof part.image_url === "string" ? part.image_url : image?.url;
      if (typeof url !== "string") throw invalid(`${at}.image_url`, `'${at}.image_url.url' is required.`);
      return inlineImage(url, `${at}.image_url.url`);
    }
    throw invalid(`${at}.type`, `'${at}.type' ${JSON.stringify(part.type)} is not supported for Gemini models.`);
  });
}

function texts(content: unknown, where: string): Part[] {
  return parts(content, where).filter((p) => typeof p.text === "string");
}

function functionCall(raw: unknown, where: string, names: Map<string, string>): Part {
  const call = toolCallOf(raw, where);
  if (typeof call.name !== "string") throw invalid(`${where}.function.name`, `'${where}.function.name' is required.`);
  const { id, signature } = splitCallId(typeof call.id === "string" ? call.id : "");
  if (typeof call.id === "string") names.set(call.id, call.name);
  const part: Part = {
    functionCall: { name: call.name, args: asObject(call.input) ?? { value: call.input }, ...(id ? { id } : {}) },
  };
  return signature ? { ...part, thoughtSignature: signature } : part;
}

/** A tool message's content → the function's response (a JSON object as it is, else its text). */
function functionResponse(content: unknown, where: string): Json {
  const text = texts(content, where)
    .map((p) => p.text)
    .join("");
  try {
    const value = JSON.parse(text) as unknown;
    const object = asObject(value);
    if (object) return object;
  } catch {
    // plain text: wrapped below
  }
  return { content: text };
}

/** How Gemini writes a conversation; a tool's response needs its call's function name. */
function geminiSpeaker(): Speaker<Part> {
  const names = new Map<string, string>(); // tool call id → function name
  return {
    system: texts,
    user: parts,
    assistant: (message, where) => assistantParts(message, where, texts, (call, at) => functionCall(call, at, names)),
    tool: (message, where) => {
      const name = names.get(message.tool_call_id);
      if (name === undefined) {
        throw invalid(
          `${where}.tool_call_id`,
          `'${where}.tool_call_id' names no tool call of an earlier assistant message.`,
        );
      }
      const { id } = splitCallId(message.tool_call_id);
      const response = functionResponse(message.content, `${where}.content`);
      return [{ functionResponse: { name, response, ...(id ? { id } : {}) } }];
    },
  };
}

function tools(body: Json): Json[] | undefined {
  const declared = functionTools(body);
  if (declared === undefined) return undefined;
  const declarations = declared.map(({ name, description, parameters }) => ({
    name,
    ...(description ? { description } : {}),
    ...(parameters ? { parametersJsonSchema: parameters } : {}),
  }));
  return declarations.length > 0 ? [{ functionDeclarations: declarations }] : undefined;
}

function toolConfig(choice: unknown): Json | undefined {
  if (choice === undefined || choice === null) return undefined;
  if (choice === "auto") return { functionCallingConfig: { mode: "AUTO" } };
  if (choice === "required") return { functionCallingConfig: { mode: "ANY" } };
  if (choice === "none") return { functionCallingConfig: { mode: "NONE" } };
  const name = asObject(asObject(choice)?.function)?.name;
  if (asObject(choice)?.type === "function" && typeof name === "string") {
    return { functionCallingConfig: { mode: "ANY", allowedFunctionNames: [name] } };
  }
  throw invalid("tool_choice", "'tool_choice' must be auto, required, none or {type: 'function', function: {name}}.");
}

/** `response_format` → the generation config of a JSON answer (null: plain text). */
function jsonOutput(format: unknown): Json | null {
  const f = asObject(format);
  if (!f || f.type === "text") return null;
  if (f.type === "json_object") return { responseMimeType: "application/json" };
  if (f.type === "json_schema") {
    const schema = asObject(asObject(f.json_schema)?.schema);
    if (!schema) {
      throw invalid("response_format.json_schema.schema", "'response_format.json_schema.schema' is required.");
    }
    return { responseMimeType: "application/json", responseJsonSchema: schema };
  }
  throw invalid("response_format.type", "'response_format.type' must be text, json_object or json_schema.");
}

function thinkingConfig(model: string, effort: unknown): Json | undefined {
  if (typeof effort !== "string") return undefined;
  if (/^gemini-3/.test(model)) {
    const level = THINKING_LEVEL[effort];
    if (level === undefined)
      throw invalid("reasoning_effort", `'reasoning_effort' ${JSON.stringify(effort)} is not a Gemini thinking level.`);
    return { thinkingLevel: level };
  }
  const budget = THINKING_BUDGET[effort];
  if (budget === undefined)
    throw invalid("reasoning_effort", `'reasoning_effort' ${JSON.stringify(effort)} is not a Gemini thinking budget.`);
  return { thinkingBudget: budget };
}

export function generateContentRequest(call: ChatCall): Json {
  const body = call.body as unknown as Json;
  if (typeof body.n === "number" && body.n > 1)
    throw invalid("n", "'n' greater than 1 is not supported for Gemini models.");
  if (body.logprobs === true) throw invalid("logprobs", "'logprobs' is not supported for Gemini models.");
  const walked = conversation(call.body.messages, geminiSpeaker());
  const system = walked.system;
  const turns = walked.turns.map((t) => ({ role: t.role === "assistant" ? "model" : "user", parts: t.content }));
  if (turns.length === 0) throw invalid("messages", "'messages' needs at least one user or assistant message.");
  const generation: Json = {
    maxOutputTokens: call.body.max_completion_tokens ?? call.body.max_tokens ?? call.maxTokens,
    ...jsonOutput(body.response_format),
  };
  const stop = typeof body.stop === "string" ? [body.stop] : Array.isArray(body.stop) ? body.stop : [];
  const sequences = stop.filter((s): s is string => typeof s === "string" && s !== "");
  if (sequences.length > 0) generation.stopSequences = sequences;
  if (typeof body.temperature === "number") generation.temperature = body.temperature;
  if (typeof body.top_p === "number") generation.topP = body.top_p;
  if (typeof body.seed === "number") generation.seed = body.seed;
  if (typeof body.presence_penalty === "number") generation.presencePenalty = body.presence_penalty;
  if (typeof body.frequency_penalty === "number") generation.frequencyPenalty = body.frequency_penalty;
  const thinking = thinkingConfig(call.upstreamModel, body.reasoning_effort);
  if (thinking) generation.thinkingConfig = thinking;
  const request: Json = { contents: turns, generationConfig: generation };
  if (system.length > 0) request.systemInstruction = { parts: system };
  const declared = tools(body);
  if (declared) request.tools = declared;
  const config = toolConfig(body.tool_choice);
  if (config && declared) request.toolConfig = config;
  return request;
}
