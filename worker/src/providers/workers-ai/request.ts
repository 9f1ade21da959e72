// An OpenAI chat request → Workers AI text-generation inputs: messages with text content (the
// parts joined), the bounded output as max_tokens, the sampling parameters Workers AI shares
// with OpenAI, tools in OpenAI's form (which the catalog's function-calling models take), and
// response_format for JSON mode.

import { HttpError } from "../../lib/errors";
import type { ChatCall } from "../types";

// Parameters with the same name and meaning in Workers AI's text-generation schema.
const SHARED = ["temperature", "top_p", "seed", "frequency_penalty", "presence_penalty", "tools", "response_format"];

interface Part {
  type?: unknown;
  text?: unknown;
}

function textOf(content: unknown, index: number): string {
  if (content === undefined || content === null) return "";
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) {
    throw new HttpError(400, `'messages[${index}].content' must be a string or an array of parts.`, {
      param: `messages[${index}].content`,
    });
  }
  return (content as Part[])
    .map((part, k) => {
      if (part?.type === "text" && typeof part.text === "string") return part.text;
      throw new HttpError(400, `Workers AI models here take text only: 'messages[${index}].content[${k}]'.`, {
        param: `messages[${index}].content[${k}]`,
      });
    })
    .join("");
}

interface Message {
  role?: unknown;
  content?: unknown;
  tool_calls?: unknown;
  tool_call_id?: unknown;
  name?: unknown;
}

function message(raw: unknown, index: number): Record<string, unknown> {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new HttpError(400, `'messages[${index}]' must be a message object.`, { param: `messages[${index}]` });
  }
  const m = raw as Message;
  const out: Record<string, unknown> = { role: m.role, content: textOf(m.content, index) };
  if (m.tool_calls !== undefined) out.tool_calls = m.tool_calls;
  if (m.tool_call_id !== undefined) out.tool_call_id = m.tool_call_id;
  if (m.name !== undefined) out.name = m.name;
  return out;
}

export function runInputs(call: ChatCall): Record<string, unknown> {
  const { body } = call;
  if ((body.n ?? 1) !== 1) {
    throw new HttpError(400, "Workers AI models answer one choice: 'n' must be 1.", { param: "n" });
  }
  const inputs: Record<string, unknown> = {
    messages: body.messages.map((m, i) => message(m, i)),
    max_tokens: call.maxTokens,
  };
  for (const name of SHARED) if (body[name] !== undefined && body[name] !== null) inputs[name] = body[name];
  if (body.stream) inputs.stream = true;
  return inputs;
}
