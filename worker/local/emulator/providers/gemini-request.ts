// What Gemini's generateContent (and countTokens) takes, checked as the API checks it. The API
// is proto-based: a field it does not know is a 400 ("Unknown name"), and every field may be
// spelled in camelCase or snake_case (google-genai for Python sends some nested fields as
// snake_case, the JS SDK and the Gemini CLI camelCase). Errors are Google's RPC shape.
import { isJsonObject, prop } from "../http";
import type { JsonObject } from "../types";

/** A field of a message: its camelCase name, and a checker of its value (null: fine). */
type Fields = Readonly<Record<string, ((value: unknown, path: string) => string | null) | null>>;

const ROLES = new Set(["user", "model", "function", "system"]);
const MODES = new Set(["MODE_UNSPECIFIED", "AUTO", "ANY", "NONE", "VALIDATED"]);
const THINKING_LEVELS = new Set(["THINKING_LEVEL_UNSPECIFIED", "MINIMAL", "LOW", "MEDIUM", "HIGH"]);
const FUNCTION_NAME = /^[a-zA-Z_][a-zA-Z0-9_.:-]{0,127}$/;

/** `fooBar` for `foo_bar` (proto JSON accepts both). */
function camel(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** The message's fields by their camelCase names; an unknown or twice-given one is the error. */
function fields(value: unknown, known: Fields, path: string): JsonObject | string {
  if (!isJsonObject(value)) return `Invalid value at '${path}', must be an object`;
  const out: JsonObject = {};
  for (const [name, field] of Object.entries(value)) {
    const key = camel(name);
    if (!Object.hasOwn(known, key))
      return `Invalid JSON payload received. Unknown name "${name}" at '${path}': Cannot find field.`;
    if (Object.hasOwn(out, key)) return `Invalid JSON payload received. Field '${key}' at '${path}' is given twice.`;
    const check = known[key];
    const problem = check ? check(field, `${path}.${key}`) : null;
    if (problem !== null) return problem;
    out[key] = field;
  }
  return out;
}

const integer = (value: unknown, path: string) =>
  typeof value === "number" && Number.isInteger(value)
    ? null
    : `Invalid value at '${path}' (TYPE_INT32), ${JSON.stringify(value)}`;
const number = (value: unknown, path: string) =>
  typeof value === "number" ? null : `Invalid value at '${path}' (TYPE_FLOAT), ${JSON.stringify(value)}`;
const boolean = (value: unknown, path: string) =>
  typeof value === "boolean" ? null : `Invalid value at '${path}' (TYPE_BOOL), ${JSON.stringify(value)}`;
const string = (value: unknown, path: string) =>
  typeof value === "string" ? null : `Invalid value at '${path}' (TYPE_STRING), ${JSON.stringify(value)}`;
const list = (value: unknown, path: string) =>
  Array.isArray(value) ? null : `Invalid value at '${path}', must be a list`;
const object = (value: unknown, path: string) =>
  isJsonObject(value) ? null : `Invalid value at '${path}', must be an object`;

const BLOB: Fields = { mimeType: string, data: string, displayName: string };
const PART: Fields = {
  text: string,
  inlineData: null,
  fileData: object,
  functionCall: object,
  functionResponse: object,
  executableCode: object,
  codeExecutionResult: object,
  thought: boolean,
  thoughtSignature: string,
  videoMetadata: object,
  partMetadata: object,
  mediaResolution: object,
};
const DATA = [
  "text",
  "inlineData",
  "fileData",
  "functionCall",
  "functionResponse",
  "executableCode",
  "codeExecutionResult",
];
const CONTENT: Fields = { role: string, parts: list };
const THINKING: Fields = { includeThoughts: boolean, thinkingBudget: integer, thinkingLevel: string };
const GENERATION: Fields = {
  stopSequences: list,
  responseMimeType: string,
  responseSchema: object,
  responseJsonSchema: null,
  responseModalities: list,
  candidateCount: integer,
  maxOutputTokens: integer,
  temperature: number,
  topP: number,
  topK: number,
  seed: integer,
  presencePenalty: number,
  frequencyPenalty: number,
  responseLogprobs: boolean,
  logprobs: integer,
  enableEnhancedCivicAnswers: boolean,
  speechConfig: object,
  thinkingConfig: object,
  imageConfig: object,
  mediaResolution: string,
};
const DECLARATION: Fields = {
  name: string,
  description: string,
  behavior: string,
  parameters: object,
  parametersJsonSchema: null,
  response: object,
  responseJsonSchema: null,
};
const TOOL: Fields = {
  functionDeclarations: list,
  googleSearch: object,
  googleSearchRetrieval: object,
  codeExecution: object,
  urlContext: object,
  computerUse: object,
  fileSearch: object,
  googleMaps: object,
};
const TOOL_CONFIG: Fields = { functionCallingConfig: object, retrievalConfig: object };
const CALLING: Fields = { mode: string, allowedFunctionNames: list };
const REQUEST: Fields = {
  model: string,
  contents: list,
  tools: list,
  toolConfig: object,
  safetySettings: list,
  systemInstruction: object,
  generationConfig: object,
  cachedContent: string,
  labels: object,
};

/** A function the model may call: its name and its parameters as JSON Schema. */
export interface Declaration {
  name: string;
  schema: unknown;
}

/** A checked request: what generation needs, camelCase. */
export interface GeminiRequest {
  contents: { role: string; parts: JsonObject[] }[];
  system: JsonObject[];
  declarations: Declaration[];
  /** Tools that are not functions (googleSearch, codeExecution, urlContext). */
  otherTools: string[];
  mode: string;
  allowed: string[];
  generation: JsonObject;
  thinking: JsonObject;
  /** The JSON Schema of a JSON answer (responseMimeType application/json), or null. */
  schema: unknown;
  json: boolean;
}

/** OpenAPI-style schema types (`OBJECT`, `STRING`) as JSON Schema's lower-case ones. */
function jsonSchemaOf(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(jsonSchemaOf);
  if (!isJsonObject(schema)) return schema;
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(schema)) {
    const name = camel(key);
    if (name === "type" && typeof value === "string") out.type = value.toLowerCase();
    else if (name === "properties" && isJsonObject(value)) {
      out.properties = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, jsonSchemaOf(v)]));
    } else out[name] = jsonSchemaOf(value);
  }
  return out;
}

function checkParts(parts: readonly unknown[], path: string): JsonObject[] | string {
  const out: JsonObject[] = [];
  for (const [i, raw] of parts.entries()) {
    const part = fields(raw, PART, `${path}[${i}]`);
    if (typeof part === "string") return part;
    const data = DATA.filter((name) => Object.hasOwn(part, name));
    if (data.length === 0) {
      return `* GenerateContentRequest.${path}[${i}].data: required oneof field 'data' must have one initialized field`;
    }
    if (data.length > 1) return `Invalid value at '${path}[${i}]': oneof field 'data' is already set`;
    if (part.inlineData !== undefined) {
      const blob = fields(part.inlineData, BLOB, `${path}[${i}].inline_data`);
      if (typeof blob === "string") return blob;
      if (typeof blob.data !== "string" || blob.data === "") {
        return `* GenerateContentRequest.${path}[${i}].inline_data.data: data is required`;
      }
      part.inlineData = blob;
    }
    out.push(part);
  }
  return out;
}

function checkContents(value: unknown): GeminiRequest["contents"] | string {
  if (!Array.isArray(value) || value.length === 0)
    return "* GenerateContentRequest.contents: contents is not specified";
  const contents: GeminiRequest["contents"] = [];
  for (const [i, raw] of (value as unknown[]).entries()) {
    const content = fields(raw, CONTENT, `contents[${i}]`);
    if (typeof content === "string") return content;
    const role = content.role ?? "user";
    if (typeof role !== "string" || !ROLES.has(role)) return "Please use a valid role: user, model.";
    const rawParts = content.parts;
    if (!Array.isArray(rawParts) || rawParts.length === 0) {
      return `* GenerateContentRequest.contents[${i}].parts: contents.parts must not be empty.`;
    }
    const parts = checkParts(rawParts, `contents[${i}].parts`);
    if (typeof parts === "string") return parts;
    contents.push({ role, parts });
  }
  return contents;
}

function checkTools(value: unknown): { declarations: Declaration[]; other: string[] } | string {
  const declarations: Declaration[] = [];
  const other: string[] = [];
  for (const [i, raw] of ((value ?? []) as unknown[]).entries()) {
    const tool = fields(raw, TOOL, `tools[${i}]`);
    if (typeof tool === "string") return tool;
    for (const kind of Object.keys(tool)) if (kind !== "functionDeclarations") other.push(kind);
    for (const [j, rawDeclaration] of ((tool.functionDeclarations ?? []) as unknown[]).entries()) {
      const path = `tools[${i}].function_declarations[${j}]`;
      const d = fields(rawDeclaration, DECLARATION, path);
      if (typeof d === "string") return d;
      if (typeof d.name !== "string" || !FUNCTION_NAME.test(d.name)) {
        return `* GenerateContentRequest.${path}.name: Invalid function name. Must start with a letter or an underscore. Must be alphameric (a-z, A-Z, 0-9), underscores (_), dots (.), colons (:), or dashes (-), with a maximum length of 128.`;
      }
      if (d.parameters !== undefined && d.parametersJsonSchema !== undefined) {
        return `* GenerateContentRequest.${path}: parameters and parameters_json_schema cannot both be set.`;
      }
      const schema = d.parametersJsonSchema ?? (d.parameters === undefined ? undefined : jsonSchemaOf(d.parameters));
      declarations.push({ name: d.name, schema });
    }
  }
  return { declarations, other };
}

/** The request checked, or Google's message for its first problem. */
export function checkGenerateContent(body: unknown): GeminiRequest | string {
  const request = fields(body, REQUEST, "");
  if (typeof request === "string") return request.replace(" at ''", "");
  const contents = checkContents(request.contents);
  if (typeof contents === "string") return contents;
  let system: JsonObject[] = [];
  if (request.systemInstruction !== undefined) {
    const instruction = fields(request.systemInstruction, CONTENT, "system_instruction");
    if (typeof instruction === "string") return instruction;
    const parts = checkParts((instruction.parts ?? []) as unknown[], "system_instruction.parts");
    if (typeof parts === "string") return parts;
    system = parts;
  }
  const tools = checkTools(request.tools);
  if (typeof tools === "string") return tools;
  let mode = "AUTO";
  let allowed: string[] = [];
  if (request.toolConfig !== undefined) {
    const config = fields(request.toolConfig, TOOL_CONFIG, "tool_config");
    if (typeof config === "string") return config;
    if (config.functionCallingConfig !== undefined) {
      const calling = fields(config.functionCallingConfig, CALLING, "tool_config.function_calling_config");
      if (typeof calling === "string") return calling;
      if (calling.mode !== undefined) {
        if (typeof calling.mode !== "string" || !MODES.has(calling.mode)) {
          return `Invalid value at 'tool_config.function_calling_config.mode' (type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionCallingConfig.Mode), ${JSON.stringify(calling.mode)}`;
        }
        mode = calling.mode === "MODE_UNSPECIFIED" ? "AUTO" : calling.mode;
      }
      allowed = ((calling.allowedFunctionNames ?? []) as unknown[]).map(String);
      if (allowed.length > 0 && mode !== "ANY" && mode !== "VALIDATED") {
        return "* GenerateContentRequest.tool_config.function_calling_config.allowed_function_names: allowed_function_names is only allowed when mode is ANY or VALIDATED.";
      }
    }
  }
  const generation = fields(request.generationConfig ?? {}, GENERATION, "generation_config");
  if (typeof generation === "string") return generation;
  const thinking = fields(generation.thinkingConfig ?? {}, THINKING, "generation_config.thinking_config");
  if (typeof thinking === "string") return thinking;
  if (thinking.thinkingBudget !== undefined && thinking.thinkingLevel !== undefined) {
    return "You can only set only one of thinking budget and thinking level.";
  }
  if (thinking.thinkingLevel !== undefined && !THINKING_LEVELS.has(String(thinking.thinkingLevel))) {
    return `Invalid value at 'generation_config.thinking_config.thinking_level' (type.googleapis.com/google.ai.generativelanguage.v1beta.ThinkingConfig.ThinkingLevel), ${JSON.stringify(thinking.thinkingLevel)}`;
  }
  if (generation.responseSchema !== undefined && generation.responseJsonSchema !== undefined) {
    return "* GenerateContentRequest.generation_config.response_schema: response_schema and response_json_schema cannot both be set.";
  }
  const mime = generation.responseMimeType ?? "text/plain";
  const hasSchema = generation.responseSchema !== undefined || generation.responseJsonSchema !== undefined;
  if (hasSchema && mime !== "application/json" && mime !== "text/x.enum") {
    return "* GenerateContentRequest.generation_config.response_mime_type: response_mime_type must be application/json or text/x.enum when response_schema is set.";
  }
  const candidates = generation.candidateCount;
  if (typeof candidates === "number" && (candidates < 1 || candidates > 8)) {
    return "* GenerateContentRequest.generation_config.candidate_count: candidate_count must be between 1 and 8.";
  }
  const schema =
    generation.responseJsonSchema ??
    (generation.responseSchema === undefined ? undefined : jsonSchemaOf(generation.responseSchema));
  return {
    contents,
    system,
    declarations: tools.declarations,
    otherTools: tools.other,
    mode,
    allowed,
    generation,
    thinking,
    schema: mime === "application/json" ? (schema ?? { type: "object" }) : null,
    json: mime === "application/json",
  };
}

/** countTokens takes `contents`, or a whole `generateContentRequest`. */
export function checkCountTokens(body: unknown): GeminiRequest | string {
  if (!isJsonObject(body)) return "Invalid JSON payload received.";
  const inner = prop(body, "generateContentRequest") ?? prop(body, "generate_content_request");
  if (inner !== undefined) return checkGenerateContent(inner);
  const request = fields(body, { contents: list }, "");
  if (typeof request === "string") return request.replace(" at ''", "");
  return checkGenerateContent({ contents: request.contents });
}
