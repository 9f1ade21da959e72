// What every translation of an OpenAI chat request to another provider's format shares (the
// anthropic, google-ai-studio and aws-bedrock modules): the 400 that names a parameter, the walk
// of the conversation into alternating user and assistant turns (system and developer messages
// apart, same-role turns merged, tool messages as the user's turn), a tool call's arguments
// parsed, and the function tools. Each provider says only how a piece becomes its own block.

import { HttpError } from "../lib/errors";

export type Json = Record<string, unknown>;

export function invalid(param: string, message: string): HttpError {
  return new HttpError(400, message, { param, code: "invalid_value" });
}

export function asObject(value: unknown): Json | null {
  return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Json) : null;
}

/** An assistant's tool call: its id, its function's name, its arguments parsed (empty: {}). */
export function toolCallOf(raw: unknown, where: string): { id: unknown; name: unknown; input: unknown } {
  const call = asObject(raw) ?? {};
  const fn = asObject(call.function) ?? {};
  let input: unknown = {};
  if (typeof fn.arguments === "string" && fn.arguments.trim() !== "") {
    try {
      input = JSON.parse(fn.arguments);
    } catch {
      throw invalid(`${where}.function.arguments`, `'${where}.function.arguments' is not valid JSON.`);
    }
  }
  return { id: call.id, name: fn.name, input };
}

/** The request's function tools (undefined without `tools`); anything else is a 400 naming it. */
export function functionTools(body: Json): { name: string; description?: string; parameters?: Json }[] | undefined {
  if (!Array.isArray(body.tools)) return undefined;
  return body.tools.map((raw, i) => {
    const tool = asObject(raw) ?? {};
    const fn = asObject(tool.function);
    if (tool.type !== "function" || !fn || typeof fn.name !== "string") {
      throw invalid(`tools[${i}]`, `'tools[${i}]' must be {type: "function", function: {name, parameters}}.`);
    }
    const parameters = asObject(fn.parameters) ?? undefined;
    return {
      name: fn.name,
      ...(typeof fn.description === "string" && fn.description !== "" ? { description: fn.description } : {}),
      ...(parameters ? { parameters } : {}),
    };
  });
}

export interface Turn<P> {
  role: "user" | "assistant";
  content: P[];
}

/** How a provider writes each piece of a conversation. */
export interface Speaker<P> {
  /** A system or developer message's content → system parts. */
  system(content: unknown, where: string): P[];
  /** A user message's content. */
  user(content: unknown, where: string): P[];
  /** An assistant message: its content and its tool calls. */
  assistant(message: Json, where: string): P[];
  /** A tool message (its tool_call_id checked to be a string) → parts of the user's turn. */
  tool(message: Json & { tool_call_id: string }, where: string): P[];
}

/** An assistant message as a provider's parts: its text, then each of its tool calls. */
export function assistantParts<P>(
  message: Json,
  where: string,
  text: (content: unknown, where: string) => P[],
  call: (raw: unknown, where: string) => P,
): P[] {
  const calls = Array.isArray(message.tool_calls) ? message.tool_calls : [];
  return [...text(message.content, `${where}.content`), ...calls.map((c, j) => call(c, `${where}.tool_calls[${j}]`))];
}

/** Same-role turns in a row are one turn (providers that require alternation merge them too). */
function push<P>(turns: Turn<P>[], role: Turn<P>["role"], content: P[]): void {
  if (content.length === 0) return;
  const last = turns.at(-1);
  if (last && last.role === role) last.content.push(...content);
  else turns.push({ role, content });
}

/** OpenAI chat messages → system parts and alternating turns, each piece in the provider's words. */
export function conversation<P>(messages: readonly unknown[], speaker: Speaker<P>): { system: P[]; turns: Turn<P>[] } {
  const system: P[] = [];
  const turns: Turn<P>[] = [];
  messages.forEach((raw, i) => {
    const where = `messages[${i}]`;
    const message = asObject(raw);
    if (!message) throw invalid(where, `'${where}' must be a message object.`);
    switch (message.role) {
      case "system":
      case "developer":
        system.push(...speaker.system(message.content, `${where}.content`));
        break;
      case "user":
        push(turns, "user", speaker.user(message.content, `${where}.content`));
        break;
      case "assistant":
        push(turns, "assistant", speaker.assistant(message, where));
        break;
      case "tool":
        if (typeof message.tool_call_id !== "string") {
          throw invalid(`${where}.tool_call_id`, `'${where}.tool_call_id' is required for a tool message.`);
        }
        push(turns, "user", speaker.tool(message as Json & { tool_call_id: string }, where));
        break;
      default:
        throw invalid(`${where}.role`, `'${where}.role' must be system, developer, user, assistant or tool.`);
    }
  });
  return { system, turns };
}
