// An Anthropic Messages request → the OpenAI chat request every provider module takes, so that
// Anthropic's clients (the SDKs, Claude Code) reach any chat model. System blocks become one
// system message; text and images become parts; an assistant's tool_use blocks its tool calls;
// a user turn's tool_result blocks tool messages (before the turn's own text, as OpenAI orders
// them); tools, tool_choice, the output cap, stop sequences, sampling and a JSON output format
// map one to one. What only Anthropic's models do is said, never silently dropped: server tools,
// documents, containers, MCP servers, context management are a 400 naming the field. Two hints
// are let go, because every other model lacks them and a client cannot know which model will
// answer after a fallback: `cache_control` (the providers cache prefixes themselves) and
// `thinking` (each provider's own default applies; its thinking is billed as output).

import { HttpError } from "../../lib/errors";
import type { ChatBody, MessagesBody } from "../../protocol/bodies";

type Json = Record<string, unknown>;

const ANTHROPIC_ONLY = ["container", "mcp_servers", "context_management", "top_k", "service_tier", "inference_geo"];

function invalid(param: string, message: string): HttpError {
  return new HttpError(400, message, { param, providerType: "invalid_request_error" });
}

function asObject(value: unknown): Json | null {
  return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Json) : null;
}

function blocksOf(content: unknown, where: string): Json[] {
  if (typeof content === "string") return content === "" ? [] : [{ type: "text", text: content }];
  if (!Array.isArray(content)) throw invalid(where, `${where}: Input should be a valid list or string`);
  return content.map((raw, i) => {
    const block = asObject(raw);
    if (!block) throw invalid(`${where}.${i}`, `${where}.${i}: Input should be an object`);
    return block;
  });
}

function textOf(blocks: Json[]): string {
  return blocks.map((b) => (b.type === "text" && typeof b.text === "string" ? b.text : "")).join("");
}

/** An image block → an OpenAI image part (a data URL for base64, the URL itself for url). */
function imagePart(block: Json, where: string): Json {
  const source = asObject(block.source) ?? {};
  if (source.type === "base64" && typeof source.data === "string" && typeof source.media_type === "string") {
    return { type: "image_url", image_url: { url: `data:${source.media_type};base64,${source.data}` } };
  }
  if (source.type === "url" && typeof source.url === "string")
    return { type: "image_url", image_url: { url: source.url } };
  throw invalid(`${where}.source`, `${where}.source: only base64 and url images reach this model.`);
}

function userParts(blocks: Json[], where: string): Json[] {
  const parts: Json[] = [];
  blocks.forEach((block, i) => {
    const at = `${where}.${i}`;
    if (block.type === "text") parts.push({ type: "text", text: String(block.text ?? "") });
    else if (block.type === "image") parts.push(imagePart(block, at));
    else if (block.type !== "tool_result") {
      throw invalid(`${at}.type`, `${at}.type: '${String(block.type)}' blocks are served for Anthropic's models only.`);
    }
  });
  return parts;
}

function toolResultText(block: Json, where: string): string {
  const content = block.content;
  if (content === undefined || content === null) return "";
  const text = typeof content === "string" ? content : textOf(blocksOf(content, `${where}.content`));
  return block.is_error === true ? `Error: ${text}` : text;
}

function messagesOf(body: MessagesBody): Json[] {
  const out: Json[] = [];
  const system = body.system;
  if (system !== undefined && system !== null) {
    const text = typeof system === "string" ? system : textOf(blocksOf(system, "system"));
    if (text !== "") out.push({ role: "system", content: text });
  }
  if (!Array.isArray(body.messages)) throw invalid("messages", "messages: Field required");
  body.messages.forEach((raw, i) => {
    const where = `messages.${i}`;
    const message = asObject(raw);
    if (!message) throw invalid(where, `${where}: Input should be an object`);
    const blocks = blocksOf(message.content, `${where}.content`);
    if (message.role === "user" || message.role === "system") {
      // tool results answer the previous turn's calls: OpenAI wants them first, one message each
      blocks.forEach((block, j) => {
        if (block.type !== "tool_result") return;
        if (typeof block.tool_use_id !== "string") {
          throw invalid(`${where}.content.${j}.tool_use_id`, `${where}.content.${j}.tool_use_id: Field required`);
        }
        out.push({
          role: "tool",
          tool_call_id: block.tool_use_id,
          content: toolResultText(block, `${where}.content.${j}`),
        });
      });
      const parts = userParts(blocks, `${where}.content`);
      if (parts.length > 0) out.push({ role: message.role, content: parts });
    } else if (message.role === "assistant") {
      const calls = blocks
        .filter((b) => b.type === "tool_use")
        .map((b) => ({
          id: b.id,
          type: "function",
          function: { name: b.name, arguments: JSON.stringify(b.input ?? {}) },
        }));
      const text = textOf(blocks); // thinking blocks are Claude's own: no other model takes them back
      out.push({
        role: "assistant",
        content: text === "" && calls.length > 0 ? null : text,
        ...(calls.length > 0 ? { tool_calls: calls } : {}),
      });
    } else {
      throw invalid(`${where}.role`, `${where}.role: Input should be 'user' or 'assistant'`);
    }
  });
  return out;
}

function toolsOf(tools: unknown): Json[] | undefined {
  if (tools === undefined || tools === null) return undefined;
  if (!Array.isArray(tools)) throw invalid("tools", "tools: Input should be a valid list");
  return tools.map((raw, i) => {
    const tool = asObject(raw) ?? {};
    if (tool.type !== undefined && tool.type !== null && tool.type !== "custom") {
      throw invalid(
        `tools.${i}.type`,
        `tools.${i}: '${String(tool.type)}' is a server tool Anthropic runs; it is served for Anthropic's models only.`,
      );
    }
    if (typeof tool.name !== "string") throw invalid(`tools.${i}.name`, `tools.${i}.name: Field required`);
    return {
      type: "function",
      function: {
        name: tool.name,
        ...(typeof tool.description === "string" ? { description: tool.description } : {}),
        parameters: asObject(tool.input_schema) ?? { type: "object", properties: {} },
      },
    };
  });
}

function toolChoiceOf(choice: unknown): { tool_choice?: unknown; parallel_tool_calls?: boolean } {
  const c = asObject(choice);
  if (!c) return {};
  const parallel = c.disable_parallel_tool_use === true ? { parallel_tool_calls: false } : {};
  if (c.type === "auto") return { tool_choice: "auto", ...parallel };
  if (c.type === "any") return { tool_choice: "required", ...parallel };
  if (c.type === "none") return { tool_choice: "none" };
  if (c.type === "tool" && typeof c.name === "string")
    return { tool_choice: { type: "function", function: { name: c.name } }, ...parallel };
  throw invalid(
    "tool_choice",
    "tool_choice: Input tag does not match any of the expected tags: 'auto', 'any', 'tool', 'none'",
  );
}

/** `output_config.format` (Anthropic's structured outputs) → OpenAI's json_schema format. */
function formatOf(outputConfig: unknown): Json {
  const format = asObject(asObject(outputConfig)?.format);
  if (!format) return {};
  if (format.type !== "json_schema" || !asObject(format.schema)) {
    throw invalid("output_config.format", "output_config.format: only a json_schema format reaches this model.");
  }
  return {
    response_format: { type: "json_schema", json_schema: { name: "output", schema: format.schema, strict: true } },
  };
}

export function chatBodyOf(body: MessagesBody): ChatBody {
  for (const field of ANTHROPIC_ONLY) {
    if (body[field] !== undefined && body[field] !== null) {
      throw invalid(field, `${field}: served for Anthropic's models only.`);
    }
  }
  const stop = Array.isArray(body.stop_sequences) ? body.stop_sequences : undefined;
  const user = asObject(body.metadata)?.user_id;
  const tools = toolsOf(body.tools);
  return {
    messages: messagesOf(body),
    // the output cap travels as the call's maxTokens: each provider module names its own field
    ...(body.stream === true ? { stream: true, stream_options: { include_usage: true } } : {}),
    ...(stop && stop.length > 0 ? { stop } : {}),
    ...(typeof body.temperature === "number" ? { temperature: body.temperature } : {}),
    ...(typeof body.top_p === "number" ? { top_p: body.top_p } : {}),
    ...(typeof user === "string" ? { user } : {}),
    ...(tools && tools.length > 0 ? { tools, ...toolChoiceOf(body.tool_choice) } : {}),
    ...formatOf(body.output_config),
  };
}
