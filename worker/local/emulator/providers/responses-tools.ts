// Tools, tool_choice and text.format of a Responses API request (responses-request.ts): function
// tools are flat ({type: "function", name, parameters, strict, description}); other tool types
// are kept and echoed, never called. Strict schemas are checked as strict-schema.ts describes.
import { isJsonObject } from "../http";
import type { ToolDef } from "../reply";
import { strictSchemaProblem } from "../strict-schema";
import type { JsonObject } from "../types";
import { badType, badValue, fail, given, missing, requiredString } from "./responses-errors";

export type ToolChoice = "none" | "auto" | "required" | { name: string };
export type TextFormat =
  | { kind: "text" }
  | { kind: "json_object" }
  | { kind: "json_schema"; name: string; schema: unknown };

const NAME_PATTERN = /^[a-zA-Z0-9_-]{1,64}$/;

export interface ParsedTools {
  tools: ToolDef[];
  echo: unknown[];
}

/** Function tools (flat: {type: "function", name, parameters, strict, description}); other types are kept, never called. */
export function parseTools(value: unknown): ParsedTools {
  const out: ParsedTools = { tools: [], echo: [] };
  if (given(value) === undefined) return out;
  if (!Array.isArray(value)) badType("tools", "an array", value);
  const list: readonly unknown[] = value;
  for (const [i, tool] of list.entries()) {
    const at = `tools[${i}]`;
    if (!isJsonObject(tool)) badType(at, "an object", tool);
    if (tool.type === undefined) missing(`${at}.type`);
    if (typeof tool.type !== "string") badType(`${at}.type`, "a string", tool.type);
    if (tool.type !== "function") {
      out.echo.push(tool);
      continue;
    }
    const name = requiredString(tool, "name", at);
    if (!NAME_PATTERN.test(name)) {
      fail(
        `Invalid '${at}.name': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.`,
        `${at}.name`,
        "invalid_value",
      );
    }
    const parameters = given(tool.parameters);
    if (parameters !== undefined && !isJsonObject(parameters)) badType(`${at}.parameters`, "an object", parameters);
    const strict = given(tool.strict);
    if (strict !== undefined && typeof strict !== "boolean") badType(`${at}.strict`, "a boolean", strict);
    const problem = parameters === undefined ? null : strictSchemaProblem(parameters);
    if (strict === true && problem !== null) {
      fail(`Invalid schema for function '${name}': ${problem}`, `${at}.parameters`, "invalid_function_parameters");
    }
    const description = given(tool.description) ?? null;
    // strict omitted: OpenAI makes the tool strict when its schema allows (UNCONFIRMED how it decides).
    const strictEcho = strict ?? (parameters !== undefined && problem === null);
    out.echo.push({ type: "function", description, name, parameters: parameters ?? null, strict: strictEcho });
    out.tools.push({ name, schema: parameters });
  }
  return out;
}

export function parseToolChoice(value: unknown, parsed: ParsedTools): { choice: ToolChoice; echo: unknown } {
  const choice = given(value);
  const names = parsed.tools.map((t) => t.name);
  if (choice === undefined) return { choice: "auto", echo: "auto" };
  if (typeof choice === "string") {
    if (choice !== "none" && choice !== "auto" && choice !== "required") {
      badValue("tool_choice", choice, ["none", "auto", "required"]);
    }
    if (choice === "required" && parsed.echo.length === 0) {
      fail("Tool choice 'required' must be specified with 'tools' parameter.", "tool_choice");
    }
    return { choice, echo: choice };
  }
  if (!isJsonObject(choice)) badType("tool_choice", "one of a string or object", choice);
  if (choice.type === "function") {
    const name = requiredString(choice, "name", "tool_choice");
    if (!names.includes(name)) fail("Tool choice 'function' not found in 'tools' parameter.", "tool_choice");
    return { choice: { name }, echo: { type: "function", name } };
  }
  if (choice.type === "allowed_tools") {
    // {type: "allowed_tools", mode: "auto" | "required", tools: [{type: "function", name}, ...]}: the first allowed function.
    const allowed: unknown = choice.tools;
    const list: readonly unknown[] = Array.isArray(allowed) ? allowed : [];
    const first = list.find((t) => isJsonObject(t) && t.type === "function" && names.includes(String(t.name)));
    return { choice: isJsonObject(first) ? { name: String(first.name) } : "none", echo: choice };
  }
  // A built-in tool (web_search, file_search, mcp, ...): never called here, the model answers in words.
  return { choice: "none", echo: choice };
}

export function parseText(value: unknown): { format: TextFormat; echo: JsonObject } {
  const text = given(value);
  if (text !== undefined && !isJsonObject(text)) badType("text", "an object", text);
  const verbosity = given(text?.verbosity) ?? "medium";
  if (typeof verbosity !== "string" || !["low", "medium", "high"].includes(verbosity)) {
    badValue("text.verbosity", verbosity, ["low", "medium", "high"]);
  }
  const format = given(text?.format);
  if (format === undefined) return { format: { kind: "text" }, echo: { format: { type: "text" }, verbosity } };
  if (!isJsonObject(format)) badType("text.format", "an object", format);
  const type = format.type;
  if (type === undefined) missing("text.format.type");
  if (type === "text" || type === "json_object")
    return { format: { kind: type }, echo: { format: { type }, verbosity } };
  if (type !== "json_schema") badValue("text.format.type", type, ["text", "json_schema", "json_object"]);
  const name = requiredString(format, "name", "text.format");
  if (!NAME_PATTERN.test(name)) {
    fail(
      "Invalid 'text.format.name': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.",
      "text.format.name",
      "invalid_value",
    );
  }
  const schema = format.schema;
  if (schema === undefined || schema === null) missing("text.format.schema");
  if (!isJsonObject(schema)) badType("text.format.schema", "an object", schema);
  const strict = given(format.strict);
  if (strict !== undefined && typeof strict !== "boolean") badType("text.format.strict", "a boolean", strict);
  const problem = strict === true ? strictSchemaProblem(schema) : null;
  if (problem !== null)
    fail(`Invalid schema for response_format '${name}': ${problem}`, "text.format.schema", "invalid_json_schema");
  const echo = { type, description: given(format.description) ?? null, name, schema, strict: strict ?? false };
  return { format: { kind: "json_schema", name, schema }, echo: { format: echo, verbosity } };
}
